"""The journal of operations under way: written before the work, gone after, read back after a
crash, with ownership between live operations and recovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallax_docker.runtime.journal import OUTPUT_MAX, Journal


def test_an_intent_is_on_disk_until_it_ends(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    intent = journal.begin("spawn", "agent-1", labels={"a": "b"})
    path = tmp_path / "j" / "spawn.agent-1.json"
    assert json.loads(path.read_text())["data"] == {"labels": {"a": "b"}}
    journal.end(intent)
    assert not path.exists()


def test_progress_is_written_before_the_next_step(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    intent = journal.begin("spawn", "agent-1")
    journal.note(intent, container_id="c1", pooled=True)
    body = json.loads((tmp_path / "spawn.agent-1.json").read_text())
    assert body["container"] == "c1" and body["data"]["pooled"] is True


def test_a_restarted_runtime_sees_every_intent_as_an_orphan(tmp_path: Path) -> None:
    first = Journal(tmp_path)
    first.begin("stop", "agent-1", reason="deleted")
    first.begin("turn", "agent-2", turnId="turn-1")
    again = Journal(tmp_path)
    orphans = again.orphans()
    assert [(i.kind, i.key) for i in orphans] == [("stop", "agent-1"), ("turn", "agent-2")]
    assert orphans[0].data == {"reason": "deleted"}


def test_intents_a_live_operation_owns_are_not_orphans(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    intent = journal.begin("restart", "agent-1")
    assert journal.orphans() == []
    journal.release(intent)
    (orphan,) = journal.orphans()
    assert journal.claim(orphan) and not journal.claim(orphan)
    assert journal.orphans() == []


def test_an_unreadable_entry_is_dropped_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "spawn.agent-1.json").write_text("{not json")
    (tmp_path / "spawn.agent-2.json").write_text(json.dumps({"kind": "stop", "key": "agent-2"}))
    assert Journal(tmp_path).orphans() == []
    assert list(tmp_path.glob("*.json")) == []


def test_a_turns_output_is_kept_up_to_the_limit_and_goes_with_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    intent = journal.begin("turn", "agent-1", turnId="turn-1")
    journal.append_output(intent, b"hello ")
    journal.append_output(intent, b"x" * OUTPUT_MAX)
    kept = journal.output(intent)
    assert kept.startswith(b"hello x") and len(kept) == OUTPUT_MAX
    journal.end(intent)
    assert journal.output(intent) == b""


def test_keys_that_are_not_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Journal(tmp_path).begin("spawn", "../escape")
