"""The README's configuration table names every UMBRELLA_ setting with its real default."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `UMBRELLA_([A-Z_]+)` \| (`[^`]*`|unset|CPU count) \|", re.MULTILINE)


def _documented() -> dict[str, str]:
    return {name.lower(): default.strip("`") for name, default in ROW.findall(README.read_text())}


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    documented = _documented()
    assert set(documented) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:  # computed from the machine, e.g. the CPU count
            continue
        expected = "unset" if field.default is None else str(field.default)
        assert documented[name] == expected, f"UMBRELLA_{name.upper()}: README says {documented[name]}, code {expected}"
