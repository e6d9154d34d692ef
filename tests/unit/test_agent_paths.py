"""Paths as callers write them, cleaned before the agent resolves them."""

from __future__ import annotations

import pytest

from parallax_docker.errors import PathForbiddenError, ValidationError
from parallax_docker.runtime.paths import agent_path, split_parent


@pytest.mark.parametrize(
    ("given", "clean"),
    [
        ("", "/workspace"),
        (".", "/workspace"),
        ("src/app.py", "/workspace/src/app.py"),
        ("./src//app.py/", "/workspace/src/app.py"),
        ("/workspace/a/./b", "/workspace/a/b"),
        ("~", "~"),
        ("~/.config/x", "~/.config/x"),
        ("~user/x", "/workspace/~user/x"),
        ("/etc/passwd", "/etc/passwd"),
        ("/", "/"),
        ("name with spaces\nand newline", "/workspace/name with spaces\nand newline"),
    ],
)
def test_paths_are_made_absolute_and_clean(given: str, clean: str) -> None:
    assert agent_path(given) == clean


@pytest.mark.parametrize("given", ["..", "../x", "a/../b", "/workspace/..", "~/../x"])
def test_climbing_is_forbidden(given: str) -> None:
    with pytest.raises(PathForbiddenError):
        agent_path(given)


def test_nul_and_overlong_paths_are_invalid() -> None:
    with pytest.raises(ValidationError):
        agent_path("a\0b")
    with pytest.raises(ValidationError):
        agent_path("a" * 5000)


def test_a_root_has_no_parent_to_write_in() -> None:
    assert split_parent("/workspace/a/b") == ("/workspace/a", "b")
    assert split_parent("~/x") == ("~", "x")
    for root in ("/workspace", "~", "/"):
        with pytest.raises(PathForbiddenError):
            split_parent(root)
