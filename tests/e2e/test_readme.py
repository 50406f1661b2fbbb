"""The README, run as written: every bash and python block, top to bottom, against one fresh server process.

A block preceded by `<!-- readme-test: skip (why) -->` is left out (the test run itself, Docker, CLIP weights).
The blocks run in a scratch folder holding a copy of examples/ and a link to the virtual environment, with the
server's port for 8000; curl fails on an HTTP error, so a block that gets a 4xx fails here with its answer.
The answers the README promises in its comments are checked for the walkthroughs that make claims.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.e2e
README = (REPO_ROOT / "README.md").read_text()
BLOCK = re.compile(r"(?:<!-- readme-test: skip \((?P<why>[^)]*)\) -->\n)?```(?P<language>\w*)\n(?P<code>.*?)```", re.S)
SHELL_PRELUDE = 'curl() { command curl --silent --show-error --fail-with-body "$@"; }\n'


def _blocks() -> list[tuple[str, str, str, str | None]]:
    """(section heading, language, code, why it is skipped) for every fenced block, in order."""
    found = []
    for match in BLOCK.finditer(README):
        heading = re.findall(r"^#+ (.*)$", README[: match.start()], re.M)[-1]
        found.append((heading, match["language"], match["code"], match["why"]))
    return found


def _scratch(tmp_path: Path) -> Path:
    here = tmp_path / "readme"
    shutil.copytree(REPO_ROOT / "examples", here / "examples")  # examples/photos.py draws into it
    (here / ".venv").symlink_to(sys.prefix)  # the README says .venv/bin/…
    return here


def test_every_block_of_the_readme_runs_top_to_bottom(server: ServerProcess, tmp_path: Path) -> None:
    cwd = _scratch(tmp_path)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "UMBRELLA_URL": server.url, "HOME": str(tmp_path)}
    port = server.url.rsplit(":", 1)[1]
    outputs: dict[str, list[str]] = {}
    ran = skipped = 0
    for heading, language, code, why in _blocks():
        if language not in ("bash", "python"):
            continue
        if why is not None:
            skipped += 1
            continue
        code = code.replace("localhost:8000", f"localhost:{port}").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        command = (
            ["bash", "-eo", "pipefail", "-c", SHELL_PRELUDE + code]
            if language == "bash"
            else [".venv/bin/python", "-c", code]
        )
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (
            f"README block under {heading!r} failed:\n{code}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        outputs.setdefault(heading, []).append(done.stdout)
        ran += 1
    # a marker cannot quietly switch the README off: the four skipped are the two commands, Docker, CLIP weights
    # and a Ray cluster (tests/docker and tests/cluster/test_readme_ray.py run those)
    assert ran >= 13 and skipped <= 4, (ran, skipped)

    _check_product_search("".join(outputs["Product search in five minutes"]))
    assert outputs["The Python SDK in ten lines"][0].splitlines() == ["[1, 3]", "similarity"]
    adapters = [out.strip() for out in outputs["LangChain and LlamaIndex"]]
    assert adapters == ["['red running shoes', 'stainless frying pan']"] * 2  # LangChain's, then LlamaIndex's
    assert "shop: 200 products" in outputs["A shop to try: `umbrella demo` and the page at `/`"][0]
    photos = [
        a
        for a in _json_objects("".join(outputs["Words, photos and sequences, embedded by the server"]))
        if "results" in a
    ]
    assert [a["results"][0]["id"] for a in photos[-2:]] == ["bag-1", "bag-1"]  # the re-shot red bag, JSON and upload
    answers = _json_objects("".join(outputs["Recommendation"]))
    like_these, events = next(a for a in answers if "results" in a), next(a for a in answers if "accepted" in a)
    assert like_these["results"][0]["id"] == "b"
    assert events["accepted"] == 2 and events["reasons"] == {"unknown_item": 1}
    assert [a["path"] for a in answers if "path" in a] == ["ranker"]  # the demo trained it
    curves = (cwd / "curves.svg").read_text()
    assert curves.lstrip().startswith("<svg") or curves.lstrip().startswith("<?xml"), curves[:200]
    assert (cwd / "shop.snapshot").stat().st_size > 10_000


def _check_product_search(printed: str) -> None:
    answers = [a for a in _json_objects(printed) if "results" in a]
    assert [a["results"][0]["id"] for a in answers] == ["p-3", "p-11", "p-19", "p-16", "p-15", "red-bag"], answers
    words, code, scanned, grouped, varied, photo = answers
    assert words["mode"] == code["mode"] == "hybrid" and photo["mode"] == "dense"
    assert code["results"][0]["lexical"]["rank"] == 1 and code["results"][0]["dense"]["rank"] > 1  # found by its code
    assert scanned["plan"] == "exact+scan" and all(h["payload"]["colour"] == "red" for h in scanned["results"])
    assert len({g["value"] for g in grouped["groups"]}) == 3
    assert [h["payload"]["category"] for h in varied["results"]].count("shoes") < 4
    assert "imported 20 of 20 rows" in printed and "imported 12 of 12 rows" in printed


def _json_objects(text: str) -> list[dict]:
    """Every JSON object printed in the text (curl prints them back to back, with no newline between)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at += 1
            continue
        found.append(value)
        at = end
    return found
