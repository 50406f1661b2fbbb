"""The README's "More than one machine" commands, run as written on this one machine: a Ray head and a second
node started with `ray start`, the server pointed at them with UMBRELLA_RAY_ADDRESS=auto, a sharded collection
made with curl and GET /cluster showing its copies on both nodes.

What must differ on one machine is changed and nothing else: the head's port (a free one, not 6379), one CPU
per node and no dashboard (a 2-core machine), the server in the background on a free port and its own data
folder. `pip install -e '.[cluster]'` was done by `make test`. Ray is stopped afterwards (`ray stop`), so this
module must not run beside another Ray cluster of this machine (pytest runs the modules one after another).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port
from tests.e2e.test_readme import SHELL_PRELUDE, _blocks, _json_objects

pytest.importorskip("ray", reason="sharded collections need Ray (pip install '.[cluster]')")
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _commands() -> str:
    (code,) = [code for heading, language, code, _ in _blocks() if heading == "More than one machine"]
    return code


def _on_this_machine(code: str, gcs: int, http: int, data: Path) -> str:
    lines = []
    for line in code.splitlines():
        if line.startswith("pip install"):
            continue  # done by `make test`
        line = line.replace("ray start --head", f"ray start --head --port={gcs} --include-dashboard=false --num-cpus=1")
        line = line.replace("--address=HEAD_IP:6379", f"--address=127.0.0.1:{gcs} --num-cpus=1")
        if "umbrella serve" in line:
            line = line.split("#")[0].strip() + f" --port {http} --data-dir {data} > {data}.log 2>&1 &\n"
            line += f"echo $! > {data}.pid\n"
            line += f"for _ in $(seq 120); do curl -s localhost:{http}/readyz >/dev/null 2>&1 && break; sleep 0.5; done"
        lines.append(line.replace("localhost:8000", f"localhost:{http}"))
    return "\n".join(lines)


def test_the_readme_commands_start_a_cluster_and_a_sharded_collection(tmp_path: Path) -> None:
    code = _commands()
    assert "UMBRELLA_RAY_ADDRESS=auto umbrella serve" in code and "ray start --head" in code
    gcs, http, data = free_port(), free_port(), tmp_path / "data"
    script = SHELL_PRELUDE + _on_this_machine(code, gcs, http, data)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    try:
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        log = Path(f"{data}.log").read_text() if Path(f"{data}.log").exists() else ""
        assert done.returncode == 0, f"{script}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{log[-3000:]}"
        created, cluster = _json_objects(done.stdout)[-2:]
        assert (created["shards"], created["replicas"], created["write_quorum"]) == (4, 2, 2)
        (orders,) = cluster["collections"]
        assert {n["label"] for n in cluster["nodes"] if n["alive"]} == {"umbrella-a", "umbrella-b"}
        assert all(sorted(nodes) == ["umbrella-a", "umbrella-b"] for nodes in orders["nodes"])
        assert all(c["alive"] and c["fresh"] for c in orders["copies"]) and len(orders["copies"]) == 8
    finally:
        if Path(f"{data}.pid").exists():
            subprocess.run(["kill", Path(f"{data}.pid").read_text().strip()], check=False)
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], env=env, capture_output=True,
                       check=False, timeout=120)  # fmt: skip
