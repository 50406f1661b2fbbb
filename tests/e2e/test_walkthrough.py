"""The README's walkthroughs, run as written against a real server process: the shell one and the SDK one."""

from __future__ import annotations

import contextlib
import io
import json
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
    answers = [a for a in _json_objects(done.stdout) if "results" in a]
    assert [a["results"][0]["id"] for a in answers] == ["p-3", "p-11", "p-19", "p-16", "p-15", "red-bag"], answers
    words, code, scanned, grouped, varied, photo = answers
    assert words["mode"] == code["mode"] == "hybrid" and photo["mode"] == "dense"
    assert code["results"][0]["lexical"]["rank"] == 1 and code["results"][0]["dense"]["rank"] > 1  # found by its code
    assert scanned["plan"] == "exact+scan" and all(h["payload"]["colour"] == "red" for h in scanned["results"])
    assert len({g["value"] for g in grouped["groups"]}) == 3
    assert [h["payload"]["category"] for h in varied["results"]].count("shoes") < 4
    assert "imported 20 of 20 rows" in done.stdout and "imported 12 of 12 rows" in done.stdout


def _json_objects(text: str) -> list[dict]:
    """Every JSON object printed in the text (curl prints them back to back, with no newline between)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at += 1
            continue
        found.append(value)
        at = end
    return found


def test_sdk_walkthrough(server: ServerProcess) -> None:
    code = _block("<!-- sdk-walkthrough", "python").replace("http://127.0.0.1:8000", server.url)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    assert printed.getvalue().splitlines() == ["[1, 3]", "similarity"]
