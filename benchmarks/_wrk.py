"""One wrk run with benchmarks/search.lua (it cycles through pre-built request bodies), its summary line parsed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

LUA = Path(__file__).resolve().parent / "search.lua"


def run_wrk(url: str, bodies: Path, connections: int, seconds: int, *, timeout: str = "2s") -> dict[str, float]:
    """POST each line of `bodies` to `url` from one wrk thread; the fields of search.lua's UMBRELLA_WRK line
    (requests, duration_us, status_errors, socket_errors, p50_us, p99_us, …). A non-2xx answer is an error."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", timeout, "-s", str(LUA), url, "--",
           str(bodies)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    line = re.search(r"UMBRELLA_WRK (.*)", out)
    if not line:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    fields = {k: float(v) for k, v in (kv.split("=") for kv in line.group(1).split())}
    if fields["status_errors"] or not fields["requests"]:
        raise RuntimeError(f"wrk saw {fields['status_errors']:.0f} non-2xx answers:\n{out}")
    return fields
