"""The crash soak (tests/soak/crasher.py) for 60 s: SIGKILL with p=0.3 every 5 s, nothing acknowledged lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import ServerProcess
from tests.soak.crasher import soak
from tests.soak.ledger import CRASH_ENV

SOAK_SECONDS = 60


@pytest.mark.e2e
@pytest.mark.slow
def test_a_minute_of_random_sigkills_loses_nothing(server_factory: Callable[..., ServerProcess]) -> None:
    report = soak(server_factory(env=CRASH_ENV).start(wait_ready=True), SOAK_SECONDS)
    print("crash soak:", report.line())
    assert report.kills >= 1 and report.acknowledged_writes > 0  # the seed kills at least once in a minute
