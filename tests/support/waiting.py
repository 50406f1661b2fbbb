"""Polling for a condition that another thread makes true, with a deadline instead of a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT = 20.0  # generous: a loaded 2-core CI machine must not fail a test by a timeout


def wait_until(condition: Callable[[], bool], timeout: float = WAIT, poll: float = 0.002) -> bool:
    """True as soon as `condition()` is; False when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
