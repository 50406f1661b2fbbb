"""A real `docker compose up` of docker-compose.yml (marked `docker`; runs only with UMBRELLA_DOCKER_TEST=1).

It builds the image, starts it with `--wait` (the compose healthcheck on /healthz), and talks to it
through the port published on 127.0.0.1, with an API key: a vector collection (upsert, search, a
filter), a text collection searched by words (the bundled all-MiniLM-L6-v2 loads inside the
container, offline), `umbrella collections` run from the image (its CLI and SDK), then `down`
without -v and `up` again: a new container finds both collections in the named volume. Also
checked: the port is bound to 127.0.0.1 only, requests without the key get 401, the server runs
as uid 10001 with HF_HUB_OFFLINE=1, torch is a CPU build with no nvidia/triton packages, and a
plain `docker run` of the image turns healthy by the Dockerfile's own HEALTHCHECK.
`down -v` and the engine's teardown run in any case.

The engine: on machines with ../shared/tools/container-engine.sh (podman behind the Docker API, no
daemon) the test starts it on its own CTR directory (UMBRELLA_DOCKER_CTR, default
$TMPDIR/umbrella-docker-test-ctr) and tears it down afterwards; an engine already running on that
CTR is used and left running (the script re-imports its base image at every start, so only a
running engine keeps the layer cache warm). Elsewhere the docker CLI's own engine is used.
The torch wheel: a CPU wheel pip finds on this machine without an index (pip's find-links, here
/opt/wheels), or those in UMBRELLA_TORCH_WHEEL_DIR, is copied into .docker-wheels/ (which ignores
itself for git) and named with TORCH_WHEEL_DIR; without one the Dockerfile takes torch from the
PyTorch CPU index. Phase times are printed (see them with -s).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "umbrella-dockertest"  # fixed, so the built image (and its layer cache) is reused by the next run
WHEEL_DIR = ".docker-wheels"
UP_TIMEOUT_S = 540  # a cold build on 2 idle cores took 5-5.5 min (torch, the hnswlib compile, layer commits)
HTTP_TIMEOUT_S = 60.0  # the first text request loads the model

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        os.environ.get("UMBRELLA_DOCKER_TEST") != "1",
        reason="builds and runs the Docker image; set UMBRELLA_DOCKER_TEST=1",
    ),
]


def log(message: str) -> None:
    print(f"[docker-test] {message}", flush=True)


def run(cmd: list[str], env: dict[str, str], timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    log(f"{time.monotonic() - started:6.1f}s  {' '.join(cmd)}  (rc {proc.returncode})")
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-6000:]
        raise AssertionError(f"{' '.join(cmd)} failed with rc {proc.returncode}:\n{tail}")
    return proc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_env_sh(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)", line)
        if m:
            env[m.group(1)] = m.group(2).strip("'\"")
    return env


@pytest.fixture(scope="module")
def engine_env() -> Iterator[dict[str, str]]:
    """Environment for the docker CLI: the local podman engine if this machine has the script, else docker's own."""
    default_script = REPO_ROOT.parent / "shared" / "tools" / "container-engine.sh"
    script = Path(os.environ.get("UMBRELLA_CONTAINER_ENGINE", default_script))
    env = dict(os.environ)
    if not script.is_file():
        if shutil.which("docker") is None:
            pytest.skip(f"no docker CLI and no {script}")
        if subprocess.run(["docker", "info"], capture_output=True, env=env, check=False).returncode != 0:
            pytest.skip(f"docker has no engine here and {script} does not exist")
        yield env
        return
    ctr = Path(os.environ.get("UMBRELLA_DOCKER_CTR") or Path(tempfile.gettempdir()) / "umbrella-docker-test-ctr")
    env["CTR"] = str(ctr)
    if (ctr / "env.sh").is_file() and (ctr / "podman.sock").exists():
        env.update(read_env_sh(ctr / "env.sh"))
        if subprocess.run(["docker", "version"], capture_output=True, env=env, check=False).returncode == 0:
            # an engine someone started on this CTR (its layer cache is warm): use it, leave it running
            log(f"using the engine already running on {ctr}")
            yield env
            return
    try:
        run(["bash", str(script)], env, timeout=400)
        env.update(read_env_sh(ctr / "env.sh"))
        yield env
    finally:
        run(["bash", str(script), "teardown"], env, timeout=120, check=False)


@pytest.fixture(scope="module")
def torch_wheel_dir(engine_env: dict[str, str]) -> Iterator[str]:
    """The build context's torch wheel folder (relative, for TORCH_WHEEL_DIR), or "" for the PyTorch CPU index."""
    pin = next(
        r.split("==", 1)[1]
        for r in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["models"]
        if r.startswith("torch==")
    )
    target = REPO_ROOT / WHEEL_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    (target / ".gitignore").write_text("*\n")  # the folder ignores itself: nothing to add to the repo's .gitignore
    try:
        source = os.environ.get("UMBRELLA_TORCH_WHEEL_DIR")
        if source:
            for wheel in Path(source).glob(f"torch-{pin}*.whl"):
                shutil.copy2(wheel, target)
        else:
            # no index: only a wheel already on this machine (pip's find-links, e.g. /opt/wheels), never a download
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-index", "-q"]
            run(
                [*pip, "-d", str(target), f"torch=={pin}"],
                engine_env,
                timeout=120,
                check=False,
            )
        wheels = [w.name for w in target.glob("torch-*.whl")]
        cpu = [w for w in wheels if "+cpu" in w]
        log(f"torch wheels for the build context: {wheels or 'none (the Dockerfile uses the PyTorch CPU index)'}")
        assert not wheels or cpu, f"refusing a non-CPU torch wheel {wheels}"
        yield WHEEL_DIR if cpu else ""
    finally:
        shutil.rmtree(target, ignore_errors=True)


class Compose:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["docker", "compose", "-p", PROJECT, *args], self.env, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def compose(engine_env: dict[str, str], torch_wheel_dir: str) -> Iterator[Compose]:
    env = dict(engine_env)
    env.update(
        UMBRELLA_PORT=str(free_port()),
        UMBRELLA_API_KEY=secrets.token_hex(16),
        TORCH_WHEEL_DIR=torch_wheel_dir,
        UMBRELLA_MODELS="all-MiniLM-L6-v2",
    )
    env.pop("UMBRELLA_BIND", None)
    c = Compose(env)
    c("down", "-v", "--remove-orphans", check=False)  # leftovers of an interrupted run
    try:
        yield c
    finally:
        logs = c("logs", "--no-color", "--tail", "60", check=False)
        log("container log (tail):\n" + logs.stdout[-4000:])
        c("down", "-v", "--remove-orphans", timeout=120, check=False)


def wait_ready(client: httpx.Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.5)


def top_hit(client: httpx.Client, collection: str, **query: object) -> object:
    r = client.post(f"/collections/{collection}/search", json={**query, "k": 1})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["id"]


def test_compose_up_serves_persists_and_tears_down(compose: Compose) -> None:
    started = time.monotonic()
    port, key = compose.env["UMBRELLA_PORT"], compose.env["UMBRELLA_API_KEY"]

    # build and start; --wait returns once the compose healthcheck (GET /healthz) says healthy
    compose("up", "-d", "--build", "--wait", "--wait-timeout", "300", timeout=UP_TIMEOUT_S)
    log(f"built and healthy after {time.monotonic() - started:.0f}s")

    cid = compose("ps", "-q", "umbrella").stdout.strip()
    fields = "{{.State.Health.Status}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}"
    inspect = run(
        ["docker", "inspect", "--format", fields, cid],
        compose.env,
        timeout=30,
    ).stdout.split()
    log(f"health, memory limit, NanoCpus: {inspect}")
    assert inspect[0] == "healthy"
    assert compose("port", "umbrella", "8000").stdout.strip() == f"127.0.0.1:{port}"  # not on every interface

    # the container: non-root, offline, CPU-only torch, no CUDA packages (a one-shot container of the
    # same image: `compose exec` sessions leave conmon processes behind for minutes under podman)
    user_env = "{{.Config.User}} {{json .Config.Env}}"
    config = run(["docker", "inspect", "--format", user_env, cid], compose.env, timeout=30)
    user, env_json = config.stdout.strip().split(" ", 1)
    assert user == "umbrella"
    assert {"HF_HUB_OFFLINE=1", "UMBRELLA_DATA_DIR=/data"} <= set(json.loads(env_json))
    image = run(["docker", "inspect", "--format", "{{.Image}}", cid], compose.env, timeout=30).stdout.strip()
    probe = (
        "import os, importlib.metadata as m, torch; "
        "print(os.getuid(), torch.version.cuda, sorted(d.metadata['Name'] for d in m.distributions() "
        "if d.metadata['Name'].lower().startswith(('nvidia', 'triton'))))"
    )
    out = run(["docker", "run", "--rm", "--entrypoint", "python", image, "-c", probe], compose.env, timeout=120)
    assert out.stdout.split() == ["10001", "None", "[]"], out.stdout

    # the image listens on 0.0.0.0 in its container, so without a key it refuses to start, in one line
    # (a foreground `docker run` that returns has exited; podman's docker shim here reports rc 0 for it)
    refused = run(["docker", "run", "--rm", image], compose.env, timeout=120, check=False)
    assert "refusing to listen on 0.0.0.0 without UMBRELLA_API_KEY" in refused.stderr, refused.stderr[-2000:]

    # the image's own HEALTHCHECK (what `docker run` uses; compose's healthcheck replaces it above)
    plain = run(["docker", "run", "-d", "--rm", "-e", f"UMBRELLA_API_KEY={key}", image], compose.env, timeout=60)
    plain = plain.stdout.strip()
    try:
        deadline, status = time.monotonic() + 90, ""
        while status != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
            status = subprocess.run(
                ["docker", "inspect", "--format", "{{.State.Health.Status}}", plain],
                env=compose.env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        assert status == "healthy", f"docker run of the image: health {status!r}"
        log(f"`docker run` of the image: healthy by its own HEALTHCHECK after {time.monotonic() - deadline + 90:.0f}s")
    finally:
        run(["docker", "rm", "-f", "-v", plain], compose.env, timeout=60, check=False)

    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S) as anonymous:
        assert anonymous.get("/healthz").status_code == 200  # open path
        assert anonymous.get("/collections").status_code == 401  # the key from the environment is required
        page = anonymous.get("/ui/app.js")  # the page's files are in the installed package, not only the source tree
        assert page.status_code == 200 and "collections" in page.text

    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S, headers={"api-key": key}) as client:
        # vectors
        r = client.put("/collections/vecs", json={"dim": 4, "metric": "cosine", "payload_indexes": {"kind": "keyword"}})
        assert r.status_code in (200, 201), r.text
        points = [
            {"id": "a", "vector": [1, 0, 0, 0], "payload": {"kind": "x"}},
            {"id": 2, "vector": [0, 1, 0, 0], "payload": {"kind": "y"}},
            {"id": "c", "vector": [0.9, 0.1, 0, 0], "payload": {"kind": "y"}},
        ]
        assert client.put("/collections/vecs/points", json={"points": points}).status_code == 200
        hits = client.post("/collections/vecs/search", json={"vector": [1, 0, 0, 0], "k": 2}).json()["results"]
        assert [h["id"] for h in hits] == ["a", "c"]
        filtered = client.post(
            "/collections/vecs/search",
            json={"vector": [1, 0, 0, 0], "k": 2, "filter": {"must": [{"key": "kind", "match": "y"}]}},
        ).json()["results"]
        assert [h["id"] for h in filtered] == ["c", 2]

        # words: the bundled text model, loaded inside the container with HF_HUB_OFFLINE=1
        r = client.put("/collections/docs", json={"embedder": {"kind": "text", "model": "all-MiniLM-L6-v2"}})
        assert r.status_code in (200, 201), r.text
        docs = [
            {"id": "bag", "text": "Red leather handbag with a gold clasp"},
            {"id": "shoe", "text": "Lightweight running shoes with white soles"},
            {"id": "knife", "text": "Stainless steel chef's knife for the kitchen"},
        ]
        assert client.put("/collections/docs/points", json={"points": docs}).status_code == 200, "text upsert"
        t0 = time.monotonic()
        assert top_hit(client, "docs", text="a purse") == "bag"
        assert top_hit(client, "docs", text="sneakers for jogging") == "shoe"
        log(f"text searches in {time.monotonic() - t0:.2f}s")

    # the command line inside the image (it talks through the SDK), in the server container's network
    listed = run(
        ["docker", "run", "--rm", "--network", f"container:{cid}", "-e", f"UMBRELLA_API_KEY={key}",
         "--entrypoint", "umbrella", image, "collections", "--url", "http://127.0.0.1:8000"],
        compose.env, timeout=120,
    ).stdout  # fmt: skip
    counts = {line.split()[0]: line.split()[1] for line in listed.splitlines()[1:]}
    assert counts == {"vecs": "3", "docs": "3"}, listed

    # a new container on the same named volume: `down` keeps volumes, `up` starts from the existing image
    compose("down", timeout=120)
    compose("up", "-d", "--wait", "--wait-timeout", "180", timeout=240)
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S, headers={"api-key": key}) as client:
        wait_ready(client)
        assert client.post("/collections/vecs/points/count", json={}).json()["count"] == 3
        hits = client.post("/collections/vecs/search", json={"vector": [1, 0, 0, 0], "k": 2}).json()["results"]
        assert [h["id"] for h in hits] == ["a", "c"]
        assert top_hit(client, "docs", text="a purse") == "bag"
        assert top_hit(client, "docs", text="something to cut vegetables") == "knife"

    log(f"test body took {time.monotonic() - started:.0f}s")
