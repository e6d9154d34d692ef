"""docs/configuration.md lists every setting the service reads, with its real default."""

from __future__ import annotations

import re
from pathlib import Path

from parallax_docker.config import Settings, _env_name

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _documented() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", DOC.read_text(), flags=re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented() -> None:
    documented = _documented()
    missing = [
        _env_name(field) for field in Settings.model_fields if _env_name(field) not in documented
    ]
    assert missing == []


def test_documented_defaults_match_the_code() -> None:
    documented = _documented()
    for field, info in Settings.model_fields.items():
        default = info.default
        text = documented[_env_name(field)].strip("`")
        if default in ((), None):
            assert text.startswith("*(empty")
        else:
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert text == shown, field
