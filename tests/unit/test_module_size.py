"""Small modules with one job: no module of the package grows past 400 lines."""

from __future__ import annotations

from pathlib import Path

import parallax_docker

SRC = Path(parallax_docker.__file__).parent
LIMIT = 400


def test_no_module_in_src_is_over_the_limit() -> None:
    sizes = {
        str(path.relative_to(SRC)): len(path.read_text().splitlines()) for path in SRC.rglob("*.py")
    }
    assert sizes, "no modules found"
    assert {name: n for name, n in sizes.items() if n > LIMIT} == {}
