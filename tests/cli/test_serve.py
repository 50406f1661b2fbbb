"""`umbrella serve` refuses unsafe settings with one clear line, before it opens anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--host", "0.0.0.0"], {}, "refusing to listen on 0.0.0.0 without UMBRELLA_API_KEY"),
        ([], {"UMBRELLA_HOST": "::"}, "refusing to listen on :: without UMBRELLA_API_KEY"),
        ([], {"UMBRELLA_READ_ONLY_API_KEY": "reader"}, "UMBRELLA_READ_ONLY_API_KEY needs UMBRELLA_API_KEY"),
    ],
)
def test_serve_refuses_in_one_line(tmp_path: Path, args: list[str], env: dict[str, str], says: str) -> None:
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(data), *args], env=env)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {result.output.strip().removeprefix('Error: ')}"]
    assert says in result.output
    assert not data.exists()  # refused before the data directory was touched
