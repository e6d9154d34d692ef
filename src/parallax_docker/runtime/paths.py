"""Paths in an agent as callers write them, made absolute and lexically clean (pure).

``src/app.py`` means ``/workspace/src/app.py``; ``~`` and ``~/...`` stay as they are (the home
is only known inside the agent, where the platform expands it). ``..`` is refused outright: a
path never climbs. This is the first look only; the platform resolves the clean path inside
the agent, links and all, and refuses what really lies outside its workspace and home.
"""

from __future__ import annotations

from parallax_docker.errors import PathForbiddenError, ValidationError

WORKSPACE = "/workspace"
HOME = "~"
PATH_MAX = 4096


def agent_path(text: str) -> str:
    if "\0" in text:
        raise ValidationError("a path may not contain a NUL byte")
    if len(text) > PATH_MAX:
        raise ValidationError(f"a path may be at most {PATH_MAX} characters")
    if text in ("", "."):
        return WORKSPACE
    if text == HOME or text.startswith(HOME + "/"):
        root, rest = HOME, text[1:]
    elif text.startswith("/"):
        root, rest = "", text
    else:
        root, rest = WORKSPACE, "/" + text
    parts = [part for part in rest.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathForbiddenError(f"{text[:300]} climbs with '..'; name the path itself")
    clean = root + "".join("/" + part for part in parts)
    return clean or "/"


def split_parent(path: str) -> tuple[str, str]:
    """(folder, name) of a clean path; PathForbiddenError for a root itself."""
    parent, _, name = path.rpartition("/")
    if not name or path in (WORKSPACE, HOME) or not parent:
        raise PathForbiddenError(f"{path} is a root: name a file inside it")
    return parent, name
