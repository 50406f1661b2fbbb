"""The README's walkthroughs, run as written against a real server process: the shell one and the SDK one."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess

import pytest

from tests.e2e.conftest import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.e2e
README = (REPO_ROOT / "README.md").read_text()


def _block(after: str, language: str) -> str:
    """The first ```language block after the heading or marker `after`."""
    tail = README[README.index(after) :]
    match = re.search(rf"```{language}\n(.*?)```", tail, re.DOTALL)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_product_search_walkthrough(server: ServerProcess) -> None:
    script = _block("## Product search in five minutes", "bash").replace("localhost:8000", server.url)
    script = script.replace("umbrella import", f"umbrella import --url {server.url}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    answers = re.findall(r'\{"results":\[\{"id":"([^"]+)"', done.stdout)
    assert answers == ["p-3", "red-bag"], done.stdout
    assert "imported 20 of 20 rows" in done.stdout and "imported 12 of 12 rows" in done.stdout


def test_sdk_walkthrough(server: ServerProcess) -> None:
    code = _block("<!-- sdk-walkthrough", "python").replace("http://127.0.0.1:8000", server.url)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    assert printed.getvalue().splitlines() == ["[1, 3]", "similarity"]
