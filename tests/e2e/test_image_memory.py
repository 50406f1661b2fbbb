"""Four 40-megapixel uploads at once do not push a real server's memory up by the gigabyte they would take
decoded together: decodes share a pixel budget (app/embedding/images.py)."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import ServerProcess
from tests.support.product_images import encode, product_image


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the high-water mark of resident memory since the process started
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.e2e
@pytest.mark.slow
def test_four_huge_photos_at_once_stay_within_the_decode_budget(server_factory: Callable[..., ServerProcess]) -> None:
    server = server_factory().start()
    buffer = io.BytesIO()
    Image.new("RGBA", (8000, 5000), (200, 30, 30, 255)).save(buffer, "PNG")  # 40 MP, ~0.1 MB on the wire
    photo = base64.b64encode(buffer.getvalue()).decode()
    with server.client(timeout=120) as client:
        assert client.put("/collections/photos", json={"embedder": {"kind": "image"}}).status_code == 201
        small = base64.b64encode(encode(product_image(1))).decode()
        assert client.put("/collections/photos/points", json={"points": [{"id": 1, "image": small}]}).status_code == 200
        before = _peak_rss_mib(server.pid)
        statuses: list[int] = []

        def search() -> None:
            statuses.append(client.post("/collections/photos/search", json={"image": photo}).status_code)

        threads = [threading.Thread(target=search) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    grown = _peak_rss_mib(server.pid) - before
    print(f"peak RSS grew by {grown:.0f} MiB for four 40 MP decodes at once")
    assert statuses == [200] * 4
    # One decode of this RGBA PNG peaks near 280 MiB (RGBA, then RGB); two at once fit the budget.
    assert grown < 700, f"peak RSS grew by {grown:.0f} MiB"
