"""Ordinary CLI failures end in one `Error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from umbrella_client.errors import NotFound

import app.cli.remote as remote
from app.cli import main
from app.storage.lockfile import DataDirLock


def _one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


def test_a_server_that_is_not_running_is_one_line() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(main, ["collections", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert "connection_failed" in _one_line(result.output) and "umbrella serve" in result.output


def test_a_refusal_from_the_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        def __enter__(self) -> Refusing:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def scroll(self, name: str, **_: Any) -> Any:
            raise NotFound(f"collection '{name}' not found", status=404)

    monkeypatch.setattr(remote, "_client", lambda url, api_key: Refusing())
    result = CliRunner().invoke(main, ["bench", "-c", "nope"])
    assert result.exit_code == 1
    assert _one_line(result.output) == "Error: [404 not_found] collection 'nope' not found"


def test_ctrl_c_in_an_import_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(url: str, api_key: str | None) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(remote, "_client", interrupted)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": 1, "vector": [0.1, 0.2]}\n')
    result = CliRunner().invoke(main, ["import", str(rows), "-c", "c"])
    assert result.exit_code == 130
    assert "run the same command again" in _one_line(result.output)


def test_serving_a_data_directory_another_server_holds_is_one_line(tmp_path: Path) -> None:
    held = DataDirLock(tmp_path / "data")
    held.acquire()
    try:
        result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "data")])
    finally:
        held.release()
    assert result.exit_code == 1
    assert "is in use by pid" in _one_line(result.output)


def test_debug_shows_the_traceback_and_version_names_the_release() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(main, ["--debug", "collections", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1 and type(result.exception).__name__ == "ConnectionFailed"  # raised, not one line
    version = CliRunner().invoke(main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("umbrella, version ")


def test_the_help_of_url_and_api_key_names_their_environment_variables() -> None:
    result = CliRunner().invoke(main, ["export", "--help"])
    assert "UMBRELLA_URL" in result.output and "UMBRELLA_API_KEY" in result.output
