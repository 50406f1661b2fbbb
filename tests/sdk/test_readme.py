"""The SDK README's quick start runs as written (against the app in-process) and prints what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import umbrella_client
from fastapi.testclient import TestClient

README = Path(__file__).resolve().parents[2] / "sdk" / "README.md"


def test_the_quick_start_runs_and_prints_what_its_comments_say(
    http: TestClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert code is not None
    in_process = umbrella_client.Client
    monkeypatch.setattr(umbrella_client, "Client", lambda *args, **kwargs: in_process(http_client=http))
    exec(compile(code[1], str(README), "exec"), {})
    promised = [line.split("# ", 1)[1] for line in code[1].splitlines() if "print(" in line]
    assert capsys.readouterr().out.splitlines() == promised
