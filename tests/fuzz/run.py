"""Fuzz a real server with schemathesis: every operation, its stateful links, four conformance checks.

`python -m tests.fuzz.run --seconds 1800` (what `make fuzz` runs) starts a server with an admin key,
seeds a vector, an image and a text collection, runs schemathesis for the time given and prints its
summary; tests/e2e/test_fuzz.py runs a short one in CI. Exit status 0 means no failure was found.
"""

from __future__ import annotations

import argparse
import base64
import re
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.conftest import ServerProcess
from tests.support.product_images import encode, product_image
from tests.support.synthetic_shop import generate_shop

CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
ADMIN_KEY = "fuzz-admin-key-0123456789abcdef0123456789"


@dataclass
class FuzzResult:
    returncode: int
    generated: int
    failures: int
    output: str


def seed(client: httpx.Client) -> dict[str, str]:
    """Four collections with data, events, a trained ranker and a snapshot, so generated requests meet real
    state; returns the names the config's dictionaries take from the environment."""

    def ok(response: httpx.Response) -> None:
        assert response.status_code < 300, response.text

    indexes = {"category": "keyword", "price": "float", "stock": "integer", "sale": "bool"}
    ok(client.put("/collections/products", json={"dim": 4, "metric": "l2", "payload_indexes": indexes}))
    points = [
        {
            "id": i,
            "vector": [i % 7, i % 5, i % 3, 1.0],
            "payload": {"category": f"c{i % 4}", "price": i * 1.5, "stock": i, "sale": i % 2 == 0},
        }
        for i in range(60)
    ]
    ok(client.put("/collections/products/points", json={"points": points}))
    events = [{"user": f"u{u}", "item": (u * 7 + j) % 60, "type": "click"} for u in range(1, 4) for j in range(5)]
    ok(client.post("/collections/products/events", json={"events": events}))
    snapshot = client.post("/collections/products/snapshots")
    ok(snapshot)
    ok(client.put("/collections/photos", json={"embedder": {"kind": "image"}, "store_source": True}))
    photos = [{"id": f"p{i}", "image": base64.b64encode(encode(product_image(i))).decode()} for i in range(8)]
    ok(client.put("/collections/photos/points", json={"points": photos}))
    ok(client.put("/collections/articles", json={"embedder": {"kind": "text"}, "store_source": True}))
    texts = ["red running shoes", "usb-c charger 65w", "warm wool hoodie", "cast iron pan"]
    ok(client.put("/collections/articles/points", json={"points": [{"id": i, "text": t} for i, t in enumerate(texts)]}))
    shop = generate_shop(300, 40, sessions_per_user=6, seed=3)
    body = {"dim": shop.vectors.shape[1], "payload_indexes": {"category": "keyword", "price": "float"}}
    ok(client.put("/collections/shop", json=body))
    ok(client.put("/collections/shop/points", json={"points": list(shop.points())}))
    for batch in shop.event_batches(10_000):
        ok(client.post("/collections/shop/events", json={"events": batch}))
    ok(client.post("/collections/shop/ranker/train", json={}))
    return {"snapshot": snapshot.json()["name"], "user": str(shop.events[0]["user"])}


def fuzz(
    url: str, api_key: str, seconds: int, work_dir: Path, names: dict[str, str], *, hypothesis_seed: int | None = None
) -> FuzzResult:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"api-key: {api_key}",
        "--checks",
        CHECKS,
        "--max-time",
        str(seconds),
        # One worker: with two, hypothesis parses lambdas' source in two threads at once, and CPython 3.11's AST
        # constructor keeps its recursion depth in state the threads share (python/cpython#106905): schemathesis
        # then dies with "AST constructor recursion depth mismatch", three runs in a row in one fresh clone.
        "--workers",
        "1",
        "--no-color",
        "--request-timeout",
        "60",  # a request that hangs is a failure, not a stalled run
    ]
    if hypothesis_seed is not None:
        command += ["--seed", str(hypothesis_seed)]
    # The config's dictionaries name what `seed` made; schemathesis leaves ${…} in dictionary values as is.
    config = work_dir / "schemathesis.toml"
    config.write_text(string.Template(CONFIG.read_text()).substitute(names))
    command[command.index(str(CONFIG))] = str(config)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 300, check=False)
    output = done.stdout + done.stderr
    generated = re.search(r"(\d+) generated", output)
    failures = re.search(r"(\d+) (?:unique )?failures?", output.split("SUMMARY")[-1])
    return FuzzResult(
        done.returncode, int(generated.group(1)) if generated else 0, int(failures.group(1)) if failures else 0, output
    )


def fuzz_a_fresh_server(seconds: int, hypothesis_seed: int | None = None) -> tuple[FuzzResult, bool, str]:
    """Start a server with an admin key, seed it, fuzz it; the result, whether the server was still up at
    the end, and the tracebacks in its log (empty when none)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data", Path(tmp) / "server.log", {"UMBRELLA_API_KEY": ADMIN_KEY})
        server.start(wait_ready=True)
        try:
            with httpx.Client(base_url=server.url, headers={"api-key": ADMIN_KEY}, timeout=60) as client:
                names = seed(client)
            result = fuzz(server.url, ADMIN_KEY, seconds, Path(tmp), names, hypothesis_seed=hypothesis_seed)
            survived = server.running()
        finally:
            server.stop()
        log = server.log_text()
    return result, survived, log[log.find("Traceback") :] if "Traceback" in log else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=1800, help="schemathesis time budget")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (random when left out)")
    args = parser.parse_args()
    result, survived, tracebacks = fuzz_a_fresh_server(args.seconds, args.seed)
    print(result.output if result.returncode else result.output.split("=== SUMMARY")[-1])
    print(tracebacks[:20_000])
    print(
        f"fuzz: {result.generated} generated, {result.failures} failures, schemathesis exit {result.returncode}, "
        f"server up at the end: {survived}"
    )
    return 0 if result.returncode == 0 and survived and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main())
