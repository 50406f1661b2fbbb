"""A real `umbrella serve` process for benchmarks: start on a free port, poll probes, stop with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_rss_kb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Server:
    """One server on one data dir; each start() takes a fresh port and appends to the same log.

    By default `python -m app.cli serve`; `command(port)` starts another (granian, Chroma's server) that
    answers `health` once up, with `env` added to this process's environment.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        command: Callable[[int], list[str]] | None = None,
        health: str = "/healthz",
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir, self.log_path = Path(data_dir), Path(log_path)
        self.command, self.health, self.env = command, health, env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 900.0) -> Server:
        """Spawn the server and return once its health path answers 200 (for ours, after the lifespan has
        opened every collection, which for 400k points takes a while)."""
        self.port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        default = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--data-dir", str(self.data_dir)]  # fmt: skip
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start on port {self.port} =====\n".encode())
            log.flush()
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(
                self.command(self.port) if self.command else default,
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._poll(self.health, timeout)
        return self

    def wait_ready(self, timeout: float = 1800.0) -> float:
        """Poll /readyz until 200; returns seconds since this process was spawned."""
        self._poll("/readyz", timeout)
        return time.perf_counter() - self.started_at

    def _poll(self, path: str, timeout: float) -> None:
        deadline, last = time.monotonic() + timeout, ""
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    raise RuntimeError(f"server exited while waiting for {path}\n{self.log_tail()}")
                try:
                    r = client.get(path)
                    if r.status_code == 200:
                        return
                    last = f"{r.status_code} {r.text[:200]}"
                except httpx.TransportError as err:
                    last = repr(err)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} not 200 within {timeout:.0f}s (last: {last})\n{self.log_tail()}")
                time.sleep(0.02)

    def stop(self, timeout: float = 600.0) -> float:
        """SIGTERM (the lifespan checkpoints) and wait; SIGKILL if it hangs. Returns seconds to exit."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise RuntimeError(f"server ignored SIGTERM for {timeout:.0f}s\n{self.log_tail()}") from None
        return time.perf_counter() - t0

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=600.0)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            text = []
        return f"--- tail of {self.log_path} ---\n" + "\n".join(text)
