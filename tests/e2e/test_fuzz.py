"""schemathesis against a real server: every operation, stateful links, no 500 and no undocumented answer."""

from __future__ import annotations

import pytest

from tests.fuzz.run import fuzz_a_fresh_server

FUZZ_SECONDS = 120  # the CI run; `make fuzz` runs 30 minutes


@pytest.mark.e2e
@pytest.mark.slow
def test_the_fuzzer_finds_nothing() -> None:
    result, survived, tracebacks = fuzz_a_fresh_server(FUZZ_SECONDS)
    for _ in range(2):
        if not (result.returncode and not result.failures and "Runtime Error" in result.output):
            break
        if not survived or tracebacks:
            break
        # schemathesis itself broke, not the server: CPython 3.11's "AST constructor recursion depth mismatch"
        # inside hypothesis (rarer since tests/fuzz/run.py runs one worker). Another run; three breaks in a
        # row, a failure found, a dead server or a traceback in its log still fail the test.
        result, survived, tracebacks = fuzz_a_fresh_server(FUZZ_SECONDS)
    assert result.returncode == 0, result.output[-20_000:]
    assert result.failures == 0 and result.generated > 1000, result.output[-5000:]  # it really ran
    assert survived and not tracebacks, tracebacks[:5000]
