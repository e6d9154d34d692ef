"""Each state machine has one owner: only runtime/lifecycle.py writes an agent record's fields,
only runtime/threads/record.py a thread record's."""

from __future__ import annotations

import ast
from pathlib import Path

import parallax_docker
from parallax_docker.runtime.agent_record import AgentRecord
from parallax_docker.runtime.threads.record import ThreadRecord

SRC = Path(parallax_docker.__file__).parent
OWNER = SRC / "runtime" / "lifecycle.py"
THREAD_OWNER = SRC / "runtime" / "threads" / "record.py"
# Both machines name some fields alike (status, error): each owner writes its own record's.
OWNERS = {OWNER, THREAD_OWNER}
FIELDS = set(AgentRecord.__dataclass_fields__) - {"_json"}
THREAD_FIELDS = set(ThreadRecord.__dataclass_fields__)
# Fields holding lists that change in place.
IN_PLACE = {"restart_times", "inputs"}


def _writes(tree: ast.AST, fields: set[str] = FIELDS) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple) else [target]
            for element in elements:
                # Another object's own fields (self.status of some class) are not a record's.
                if (
                    isinstance(element, ast.Attribute)
                    and element.attr in fields
                    and not (isinstance(element.value, ast.Name) and element.value.id == "self")
                ):
                    found.append((element.lineno, element.attr))
        # In-place changes of a record's list (record.restart_times.append(...)).
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Attribute) and owner.attr in IN_PLACE & fields:
                found.append((node.lineno, owner.attr))
    return found


def _offenders(fields: set[str]) -> list[str]:
    offenders = []
    # Records live in the runtime; the API hands them nothing but handles.
    for path in sorted([*(SRC / "runtime").rglob("*.py"), *(SRC / "api").rglob("*.py")]):
        if path in OWNERS:
            continue
        for line, name in _writes(ast.parse(path.read_text()), fields):
            offenders.append(f"{path.relative_to(SRC)}:{line} writes .{name}")
    return offenders


def test_no_module_but_the_lifecycle_writes_a_record_field() -> None:
    assert _offenders(FIELDS) == []


def test_no_module_but_the_thread_machine_writes_a_thread_record_field() -> None:
    assert _offenders(THREAD_FIELDS) == []


def test_each_machine_leaves_the_other_machines_records_alone() -> None:
    def imports(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if "import" in line]

    assert not any("threads" in line for line in imports(OWNER))
    assert not any("lifecycle" in line for line in imports(THREAD_OWNER))
    assert "AgentRecord" not in THREAD_OWNER.read_text()
    assert "ThreadRecord" not in OWNER.read_text()


def test_the_check_finds_a_write_when_there_is_one() -> None:
    tree = ast.parse("record.status = x\nrecord.busy += 1\nr.restart_times.append(1)")
    assert len(_writes(tree)) == 3
    assert _writes(ast.parse("self.status = 1")) == []
    found = _writes(ast.parse("t.turn_id, t.current = 1, 2\nt.inputs.pop(0)"), THREAD_FIELDS)
    assert sorted(name for _, name in found) == ["current", "inputs", "turn_id"]
