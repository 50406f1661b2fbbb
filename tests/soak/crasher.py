"""A crash soak after Qdrant's crasher: a writer streams batches of sequential ids into a real server; every
5 s the server is SIGKILLed with probability 0.3, restarted, and checked against what it acknowledged.

`python -m tests.soak.crasher --seconds 600` runs it by hand; tests/e2e/test_crash_soak.py runs 60 s in CI.
Each restart is checked by tests/soak/ledger.py's verify: no holes, no phantoms, no resurrected deletes,
whole batches only, vectors bit for bit, count = scroll = filtered counts, every point finds itself first.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import ServerProcess
from tests.soak.ledger import CRASH_ENV, SEED, Ledger, create_collection, resolve_inflight, verify, writer

TICK_S = 5.0
KILL_PROBABILITY = 0.3


@dataclass
class SoakReport:
    seconds: float
    ticks: int
    kills: int
    acknowledged_writes: int
    points: int
    deleted: int
    lost: int  # always 0 when verify passed: it raises on the first loss

    def line(self) -> str:
        return (
            f"{self.seconds:.0f} s, {self.ticks} ticks, {self.kills} SIGKILLs, {self.acknowledged_writes} acknowledged "
            f"writes, {self.points} points alive, {self.deleted} deleted, {self.lost} lost"
        )


def soak(server: ServerProcess, seconds: float, seed: int = SEED) -> SoakReport:
    """Run the soak on a started server; raises AssertionError at the first broken promise."""
    dice, writer_rng, check_rng = random.Random(seed), random.Random(seed + 1), random.Random(seed + 2)
    with server.client() as client:
        create_collection(client)
    ledger = Ledger()
    started, ticks, kills = time.monotonic(), 0, 0
    while time.monotonic() - started < seconds:
        stop = threading.Event()
        thread = threading.Thread(target=writer, args=(server.url, ledger, stop, writer_rng), daemon=True)
        thread.start()
        killed = False
        while not killed and time.monotonic() - started < seconds:
            time.sleep(TICK_S)
            ticks += 1
            killed = dice.random() < KILL_PROBABILITY
        if killed:
            server.kill()
            kills += 1
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "writer thread hung"
        assert not ledger.failures, ledger.failures
        if killed:
            server.start(wait_ready=True)
        with server.client() as client:
            resolve_inflight(client, ledger)
            verify(client, ledger, check_rng, ticks)
        ledger.inflight_error = ""
    return SoakReport(
        time.monotonic() - started, ticks, kills, ledger.committed, len(ledger.points), len(ledger.deleted), 0
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data", Path(tmp) / "server.log", CRASH_ENV).start(wait_ready=True)
        try:
            report = soak(server, args.seconds, args.seed)
        except AssertionError:
            print(server.log_tail(80))
            raise
        finally:
            server.kill()
    print("crash soak:", report.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
