"""The README's two commands are the ones the scripts and CI run (no engine)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_starts_with_the_two_commands_without_sudo() -> None:
    assert readme_commands() == ["bash scripts/run.sh", "bash scripts/test.sh"]


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    ci = [
        line.strip()
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert ci == ["exec " + readme_commands()[1]]


def test_the_package_licence_is_an_spdx_string_with_its_file() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'license = "MIT"' in text and 'license-files = ["LICENSE"]' in text
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
