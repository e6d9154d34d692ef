"""Swarm stays behind the protocols: no code outside backends/ asks which platform it is on.

The import contract (.importlinter) keeps ``backends.swarm`` out of every other package; this
keeps the word out of their logic too (a setting may name it; the factory chooses by it).
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "parallax_docker"
# Where naming the platform is the job: the setting, the factory, and the backends themselves.
ALLOWED = {SRC / "config.py", SRC / "backends" / "factory.py"}
_COMPARED = re.compile(
    r"""(==|!=|\bin\b|\bis\b)\s*[\(\[{]?\s*["']swarm["']|["']swarm["']\s*(==|!=)"""
)


def test_no_code_outside_backends_branches_on_swarm() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if path not in ALLOWED and SRC / "backends" not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _COMPARED.search(line) or "backends.swarm" in line
    ]
    assert offenders == []


def test_the_check_sees_a_branch() -> None:
    assert _COMPARED.search('if settings.backend == "swarm":')
    assert _COMPARED.search("if 'swarm' != kind:")
    assert not _COMPARED.search('platform="swarm",')
