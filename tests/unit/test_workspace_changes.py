"""Snapshots compared, and what the agent-side scripts print, parsed (pure)."""

from __future__ import annotations

from pathlib import Path

from parallax_docker.runtime.snapshots import FileState, Snapshot, SnapshotStore, changed_files
from parallax_docker.runtime.workspace import parse_git_diff, parse_snapshot

HASH_A = "a" * 64
HASH_B = "b" * 64


def snap(**files: FileState) -> Snapshot:
    return Snapshot(root="/workspace", taken_at=1.0, files=files)


def test_changes_are_added_modified_and_removed_by_size_time_and_hash() -> None:
    before = snap(
        same=FileState("file", 1, 10, HASH_A),
        touched=FileState("file", 1, 10, HASH_A),
        edited=FileState("file", 1, 10, HASH_A),
        grown=FileState("file", 1, 10),
        gone=FileState("file", 1, 10),
        relinked=FileState("link", 3, 10),
    )
    after = snap(
        same=FileState("file", 1, 10, HASH_A),
        touched=FileState("file", 1, 99, HASH_A),  # time only: same content
        edited=FileState("file", 1, 10, HASH_B),
        grown=FileState("file", 2, 10),
        new=FileState("file", 5, 11),
        relinked=FileState("file", 3, 10),
    )
    assert changed_files(before, after) == [
        ("edited", "modified", 1),
        ("gone", "deleted", None),
        ("grown", "modified", 2),
        ("new", "added", 5),
        ("relinked", "modified", 3),
    ]


def test_a_snapshot_survives_the_store_and_is_pruned_with_its_agent(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "ws")
    kept = Snapshot(
        root="/workspace", taken_at=5.0, files={"a b": FileState("file", 1, 2, HASH_A)}, head="c0"
    )
    store.save("agent-1", kept)
    store.save("agent-2", kept)
    assert store.load("agent-1") == kept
    assert store.load("missing") is None
    assert store.prune(["agent-1"], now=0.0) == []  # too young to go
    assert store.prune(["agent-1"], now=10**10) == ["agent-2"]
    assert store.load("agent-2") is None and store.load("agent-1") == kept


def test_snapshot_output_is_parsed_with_odd_names() -> None:
    raw = (
        "root /workspace/p\ngit 1234\nstat\n"
        "regular file|5|100|./a|b.txt\nsymbolic link|3|100|./l\ndirectory|0|1|./d\n"
        f"hash\n{HASH_A}  ./a|b.txt\n\\{HASH_B}  ./esc\\\\aped\nend\n"
    ).encode()
    parsed = parse_snapshot(raw, "/workspace")
    assert parsed.root == "/workspace/p"
    assert (parsed.git, parsed.head, parsed.truncated) == (True, "1234", False)
    assert parsed.files["a|b.txt"] == FileState("file", 5, 100, HASH_A)
    assert parsed.files["l"] == FileState("link", 3, 100, None)
    assert "esc\\aped" not in parsed.files
    assert parse_snapshot(b"root /w\nstat\n", "/w").truncated  # no end: cut short


def test_git_output_is_parsed_into_commits_files_and_the_diff() -> None:
    raw = (
        b"head h2\nbase h0\nh2\x1fann\x1f2026-01-01T00:00:00+00:00\x1fsecond\x1e\n"
        b"h1\x1fbob\x1f2026-01-01T00:00:00+00:00\x1ffirst\x1e\n\0\0"
        b"M\0a.txt\0D\0b.txt\0R100\0old name\0new name\0A\0c.txt\0\0\0"
        b"diff --git a/a.txt b/a.txt\n-x\n+y\n"
    )
    parsed = parse_git_diff(raw, "/workspace", 10_000, cut=False)
    assert parsed.head == "h2"
    assert [c.subject for c in parsed.commits] == ["second", "first"]
    assert [(f.path, f.change, f.old_path) for f in parsed.files] == [
        ("a.txt", "modified", None),
        ("b.txt", "deleted", None),
        ("new name", "renamed", "old name"),
        ("c.txt", "added", None),
    ]
    assert parsed.diff == "diff --git a/a.txt b/a.txt\n-x\n+y\n"
    short = parse_git_diff(raw, "/workspace", 10, cut=False)
    assert short.truncated and short.diff == "diff --git"
