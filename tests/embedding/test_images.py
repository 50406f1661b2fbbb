"""The decode budget: at most so many pixels decoded at once, one huge image always allowed alone."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.errors import Overloaded
from app.embedding.images import PixelBudget


def test_the_pixel_budget_lets_big_decodes_through_one_at_a_time_and_429s_a_long_wait() -> None:
    budget = PixelBudget(budget=100, wait_s=0.5)
    peak, lock = [0], threading.Lock()

    def decode(pixels: int) -> None:
        with budget.share(pixels):
            with lock:
                peak[0] = max(peak[0], budget.in_use)
            time.sleep(0.05)

    threads = [threading.Thread(target=decode, args=(80,)) for _ in range(4)]
    threads += [threading.Thread(target=decode, args=(10,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] <= 100 and budget.in_use == 0
    # larger than the whole budget: still decodes, alone; what comes meanwhile waits, then gets a 429
    with budget.share(500), pytest.raises(Overloaded), budget.share(1):
        pass
    assert budget.in_use == 0
