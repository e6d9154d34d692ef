"""Only runtime/lifecycle.py writes an agent record's fields (the state machine has one owner)."""

from __future__ import annotations

import ast
from pathlib import Path

import parallax_docker
from parallax_docker.runtime.lifecycle import AgentRecord

SRC = Path(parallax_docker.__file__).parent
OWNER = SRC / "runtime" / "lifecycle.py"
FIELDS = set(AgentRecord.__dataclass_fields__) - {"_json"}


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            # Another object's own fields (self.status of some class) are not a record's.
            if (
                isinstance(target, ast.Attribute)
                and target.attr in FIELDS
                and not (isinstance(target.value, ast.Name) and target.value.id == "self")
            ):
                found.append((target.lineno, target.attr))
        # In-place changes of a record's list (record.restart_times.append(...)).
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Attribute) and owner.attr == "restart_times":
                found.append((node.lineno, "restart_times"))
    return found


def test_no_module_but_the_lifecycle_writes_a_record_field() -> None:
    offenders = []
    # Records live in the runtime; the API hands them nothing but handles.
    for path in sorted([*(SRC / "runtime").rglob("*.py"), *(SRC / "api").rglob("*.py")]):
        if path == OWNER:
            continue
        for line, name in _writes(ast.parse(path.read_text())):
            offenders.append(f"{path.relative_to(SRC)}:{line} writes .{name}")
    assert offenders == []


def test_the_check_finds_a_write_when_there_is_one() -> None:
    tree = ast.parse("record.status = x\nrecord.busy += 1\nr.restart_times.append(1)")
    assert len(_writes(tree)) == 3
    assert _writes(ast.parse("self.status = 1")) == []
