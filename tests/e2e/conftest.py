"""End-to-end fixtures: the real server as a subprocess (`python -m app.cli serve`) on a free port.

`ServerProcess` starts the server on a given data dir, waits for /healthz (and, if asked, /readyz)
by polling against a deadline, and can be killed with any signal. The `server_factory` fixture
hands out such processes and always SIGKILLs whatever is still running at teardown, then prints
the tail of every server log: pytest shows that output only when the test failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0  # import + open the data dir on a slow 2-core machine; polled, not slept
READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerError(RuntimeError):
    """The server did not come up (or died); the message carries the tail of its log."""


class ServerProcess:
    """One server process on one data dir. Every start() gets a fresh port and appends to the same log."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.starts = 0

    # ---- life cycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.port is not None, "server not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, wait_ready: bool = False, timeout: float = START_TIMEOUT_S) -> ServerProcess:
        """Spawn the server and return once /healthz answers 200 (and /readyz, with wait_ready)."""
        assert not self.running(), "already running"
        for attempt in range(3):  # the free port may be taken between probing and binding
            self._spawn()
            try:
                self.wait_healthy(timeout)
                break
            except ServerError:
                if attempt < 2 and not self.running() and "address already in use" in self.log_tail().lower():
                    continue
                self.kill()
                raise
        if wait_ready:
            self.wait_ready(READY_TIMEOUT_S)
        return self

    def _spawn(self) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("UMBRELLA_")}
        env.update({"UMBRELLA_INDEX_THREADS": "2", "PYTHONUNBUFFERED": "1", **self.extra_env})
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts} on port {self.port} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _poll(self, path: str, timeout: float, what: str) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: object = None
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while True:
                if not self.running():
                    raise ServerError(
                        f"server exited with {self.proc.returncode if self.proc else None} "
                        f"while waiting for {what}\n{self.log_tail()}"
                    )
                try:
                    r = client.get(path)
                    if r.status_code == 200:
                        return r
                    last = f"{r.status_code} {r.text[:300]}"
                except httpx.TransportError as err:
                    last = repr(err)
                if time.monotonic() > deadline:
                    raise ServerError(f"{what} not reached within {timeout:.0f}s (last: {last})\n{self.log_tail()}")
                time.sleep(0.05)

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        self._poll("/healthz", timeout, "GET /healthz == 200")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict:
        return self._poll("/readyz", timeout, "GET /readyz == 200").json()  # type: ignore[no-any-return]

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
        """Send `sig` and wait (bounded) for the exit; escalate to SIGKILL if it does not come."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise ServerError(f"server ignored signal {sig} for {timeout:.0f}s\n{self.log_tail()}") from None
        return self.proc.returncode

    def stop(self, timeout: float = 30.0) -> int | None:
        """Graceful shutdown (SIGTERM): uvicorn runs the lifespan's close, which checkpoints."""
        return self.kill(signal.SIGTERM, timeout)

    def restart(self, *, wait_ready: bool = False) -> ServerProcess:
        self.kill()
        return self.start(wait_ready=wait_ready)

    # ---- helpers ----------------------------------------------------------------------------
    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- tail of {self.log_path} ---\n" + "\n".join(tail)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """`server_factory(data_dir=None, env=None)` → an unstarted ServerProcess; all are killed at teardown."""
    made: list[ServerProcess] = []

    def make(data_dir: Path | None = None, env: dict[str, str] | None = None) -> ServerProcess:
        n = len(made)
        server = ServerProcess(data_dir or tmp_path / "data", tmp_path / f"server-{n}.log", env)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill(signal.SIGKILL, timeout=10)
    for server in made:  # shown by pytest only for a failed test
        print(server.log_tail(80))


@pytest.fixture
def server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """A server on tmp_path/data, already healthy."""
    return server_factory().start()
