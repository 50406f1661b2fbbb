"""A full disk: writes answer 507 and keep nothing, reads go on, writes resume once there is space, and a
restart finds exactly what was acknowledged. The data dir is a small tmpfs (skipped where it cannot be mounted)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import ServerProcess
from tests.soak.ledger import b64

DIM = 64
BATCH = 200


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or done.returncode}): needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_full_disk_is_a_507_and_loses_nothing(small_disk: Path, server_factory: Callable[..., ServerProcess]) -> None:
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (1 << 20))  # freed later to make room
    server = server_factory(data_dir=small_disk / "data", env={"UMBRELLA_CHECKPOINT_EVERY": "1000000"}).start()
    rng = np.random.default_rng(0)
    acknowledged: dict[int, np.ndarray] = {}
    with server.client() as client:
        assert client.put("/collections/c", json={"dim": DIM, "metric": "l2"}).status_code == 201
        full = None
        for b in range(200):
            vectors = rng.normal(size=(BATCH, DIM)).astype(np.float32)
            ids = list(range(b * BATCH, (b + 1) * BATCH))
            r = client.put("/collections/c/points", json={"batch": {"ids": ids, "vectors": b64(vectors)}})
            if r.status_code != 200:
                full = r
                break
            acknowledged.update(zip(ids, vectors, strict=True))
        assert full is not None, "the disk never filled"
        assert full.status_code == 507 and full.json()["error"]["code"] == "insufficient_storage", full.text
        assert len(acknowledged) > 0
        # reads go on, and the failed batch left nothing behind
        assert client.post("/collections/c/points/count", json={}).json()["count"] == len(acknowledged)
        hit = client.post("/collections/c/search", json={"vector": acknowledged[0].tolist(), "k": 1}).json()
        assert hit["results"][0]["id"] == 0
        events = {"events": [{"user": "u", "item": 0, "type": "view"}] * 1}
        assert client.post("/collections/c/events", json=events).status_code in (200, 507)
        # space again: writes resume
        ballast.unlink()
        vectors = rng.normal(size=(BATCH, DIM)).astype(np.float32)
        ids = list(range(10**6, 10**6 + BATCH))
        r = client.put("/collections/c/points", json={"batch": {"ids": ids, "vectors": b64(vectors)}})
        assert r.status_code == 200, r.text
        acknowledged.update(zip(ids, vectors, strict=True))
    server.restart(wait_ready=True)  # SIGKILL, then start: what was acknowledged is all there, intact
    with server.client() as client:
        assert client.post("/collections/c/points/count", json={}).json()["count"] == len(acknowledged)
        sample = sorted(acknowledged)[:: max(1, len(acknowledged) // 100)]
        got = client.post("/collections/c/points/get", json={"ids": sample, "with_vector": True}).json()["points"]
        np.testing.assert_array_equal(
            np.asarray([p["vector"] for p in got], np.float32), np.stack([acknowledged[i] for i in sample])
        )
    assert "Traceback" not in server.log_text()
