"""Threads on the fake platform: the spawn answered before the agent is up, the objective as the
first turn, queued inputs, interrupts, stops, the agent's end, idleness and a service restart.

The real-engine tests (tests/integration/test_threads.py) show the same through the routes; these
pin down the order of events and the edge cases that are hard to time on a real engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parallax_docker.backends.base import ExecExit, ExecOutput
from parallax_docker.errors import (
    ConflictError,
    InputUnsupportedError,
    ThreadNotFoundError,
    ThreadStateError,
)
from parallax_docker.runtime.events import RuntimeEvent
from parallax_docker.runtime.threads.files import write_argv
from parallax_docker.thread_models import SpawnThreadRequest, ThreadInputRequest, ThreadStatus
from tests.unit.fakes import exited_state
from tests.unit.harness import IMAGE, Harness, harness


def thread_request(**fields: Any) -> SpawnThreadRequest:
    body: dict[str, Any] = {
        "id": "exec-1-thread-0",
        "executionId": "exec-1",
        "name": "Engineer 1",
        "agentType": "custom",
        "objective": "Say hello.",
        "image": IMAGE,
    }
    body.update(fields)
    return SpawnThreadRequest.model_validate(body)


class Seen:
    """Every event published so far (the harness's subscription drained as it goes)."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.all: list[RuntimeEvent] = []

    def thread(self) -> list[tuple[str, dict[str, Any]]]:
        self.all += self.h.drain()
        return [
            (e.data["event"]["type"], e.data["event"]["data"])
            for e in self.all
            if e.event == "thread_event"
        ]

    def types(self) -> list[str]:
        return [kind for kind, _ in self.thread()]

    async def until(self, check: Callable[[list[str]], bool], timeout_s: float = 5) -> list[str]:
        async with asyncio.timeout(timeout_s):
            while not check(self.types()):
                await asyncio.sleep(0.005)
        return self.types()


def turns_run(h: Harness) -> list[bytes | None]:
    """What each turn's CLI was given on stdin (the other execs list workspace changes)."""
    return [spec.stdin for _, spec in h.fake.called("stream_exec") if "parallax-turn" in spec.argv]


def answer(text: str) -> list[ExecOutput | ExecExit]:
    return [ExecOutput("stdout", text.encode()), ExecExit(0)]


async def test_spawn_answers_before_the_agent_starts_and_the_objective_primes_it(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        h.fake.hold["start"] = asyncio.Event()
        h.fake.turn_outputs.append(answer("Hello.\nCONFIDENCE: 0.8\n"))
        handle = await h.runtime.threads.spawn(thread_request())
        assert handle.id == "exec-1-thread-0" and handle.agent_id == handle.id
        assert handle.status == ThreadStatus.STARTING
        assert h.runtime.registry.get(handle.id).transitioning  # reserved, not yet started
        assert seen.types() == []
        h.fake.hold["start"].set()
        types = await seen.until(lambda t: "thread_ready" in t)
        assert types == ["thread_started", "thread_output", "thread_turn_complete", "thread_ready"]
        complete = dict(seen.thread())["thread_turn_complete"]
        assert complete["output"] == "Hello.\nCONFIDENCE: 0.8"
        assert complete["confidence"] == 0.8 and complete["objective"] is True
        thread = h.runtime.threads.get(handle.id)
        assert thread.status == ThreadStatus.READY
        assert thread.summary == "Hello.\nCONFIDENCE: 0.8"
        # The start-up intent ended with the objective's answer.
        await seen.until(lambda _t: not h.runtime.journal.owned("thread", handle.id))


async def test_the_thread_env_and_context_files_reach_the_agent_before_the_objective(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        files = [
            {"path": ".parallax/thread-memory.md", "content": "remember this"},
            {"path": "notes.txt", "content": "n"},
        ]
        await h.runtime.threads.spawn(
            thread_request(env={"TOKEN": "s3cret"}, contextFiles=files, approvalPreset="standard")
        )
        await seen.until(lambda t: "thread_ready" in t)
        env = h.deployment.fake_secrets.delivered["exec-1-thread-0"]
        assert env["TOKEN"] == "s3cret"
        assert env["PARALLAX_THREAD_ID"] == "exec-1-thread-0"
        assert env["PARALLAX_THREAD_OBJECTIVE"] == "Say hello."
        assert env["PARALLAX_THREAD_MEMORY_FILE"] == ".parallax/thread-memory.md"
        assert env["PARALLAX_APPROVAL_PRESET"] == "standard"
        writes = [argv for _, argv in h.fake.called("exec") if "parallax-context-file" in argv]
        assert writes == [write_argv(".parallax/thread-memory.md"), write_argv("notes.txt")]
        # The files were written before the objective's turn began (the workspace's snapshot
        # at spawn is a stream of its own, not a turn).
        calls = [
            name
            for name, arg in h.fake.calls
            if name == "exec" or (name == "stream_exec" and "parallax-workspace" not in arg[1].argv)
        ]
        assert calls.index("stream_exec") > 1
        # No secret in any event.
        assert all("s3cret" not in repr(e.data) for e in seen.all)


async def test_a_retried_spawn_answers_with_the_same_thread_and_another_body_conflicts(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        first = await h.runtime.threads.spawn(thread_request())
        again = await h.runtime.threads.spawn(thread_request())
        assert again.id == first.id and again.created_at == first.created_at
        with pytest.raises(ConflictError):
            await h.runtime.threads.spawn(thread_request(objective="something else"))


async def test_inputs_sent_before_ready_run_after_the_objective_in_order(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        h.fake.hold["start"] = asyncio.Event()
        for text in ("objective done", "first", "second"):
            h.fake.turn_outputs.append(answer(text))
        handle = await h.runtime.threads.spawn(thread_request())
        for text in ("one", "two"):
            await h.runtime.threads.send(handle.id, ThreadInputRequest(message=text))
        h.fake.hold["start"].set()
        await seen.until(lambda t: t.count("thread_turn_complete") == 3)
        outputs = [d["output"] for k, d in seen.thread() if k == "thread_turn_complete"]
        assert outputs == ["objective done", "first", "second"]
        assert seen.types().count("thread_ready") == 1
        assert turns_run(h) == [b"Say hello.", b"one", b"two"]


async def test_ctrl_c_interrupts_the_running_turn_and_fails_it(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        handle = await h.runtime.threads.spawn(thread_request())
        await seen.until(lambda t: "thread_ready" in t)
        with pytest.raises(ThreadStateError):
            await h.runtime.threads.send(handle.id, ThreadInputRequest(raw="\u0003"))
        h.fake.hang_turns = True
        await h.runtime.threads.send(handle.id, ThreadInputRequest(message="long job"))
        await seen.until(lambda _t: h.runtime.threads.get(handle.id).status == "running")
        await h.runtime.threads.send(handle.id, ThreadInputRequest(keys=["C-c"]))
        await seen.until(lambda t: "thread_failed" in t)
        failed = dict(seen.thread())["thread_failed"]
        assert failed["code"] == "TURN_INTERRUPTED"
        with pytest.raises(InputUnsupportedError):
            await h.runtime.threads.send(handle.id, ThreadInputRequest(keys=["ENTER"]))


async def test_stop_ends_the_thread_once_and_a_repeated_stop_succeeds(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        handle = await h.runtime.threads.spawn(thread_request())
        await seen.until(lambda t: "thread_ready" in t)
        await h.runtime.threads.stop_thread(handle.id, force=True)
        await h.runtime.threads.stop_thread(handle.id)
        assert seen.types().count("thread_stopped") == 1
        assert dict(seen.thread())["thread_stopped"]["reason"] == "deleted"
        assert h.runtime.threads.get(handle.id).status == ThreadStatus.STOPPED
        assert h.runtime.registry.find(handle.id) is None
        with pytest.raises(ThreadStateError):
            await h.runtime.threads.send(handle.id, ThreadInputRequest(message="late"))
        with pytest.raises(ThreadNotFoundError):
            h.runtime.threads.get("no-such-thread")


@pytest.mark.parametrize("under_way", [False, True])
async def test_a_stop_during_the_spawn_undoes_it(tmp_path: Path, under_way: bool) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        h.fake.hold["start"] = asyncio.Event()
        handle = await h.runtime.threads.spawn(thread_request())
        if under_way:  # the container is made, its start hangs
            await seen.until(lambda _t: bool(h.fake.called("start")))
        await h.runtime.threads.stop_thread(handle.id)
        assert seen.types() == ["thread_stopped"]
        assert h.runtime.registry.find(handle.id) is None
        assert h.fake.containers == {}
        assert not h.runtime.journal.owned("thread", handle.id)
        assert not h.runtime.journal.owned("spawn", handle.id)
        assert h.runtime.journal.orphans() == []


async def test_the_agents_clean_exit_completes_the_thread_and_a_crash_fails_it(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        clean = await h.runtime.threads.spawn(thread_request())
        crash = await h.runtime.threads.spawn(thread_request(id="exec-1-thread-1"))
        await seen.until(lambda t: t.count("thread_ready") == 2)
        observer = h.runtime.reconciler._observer
        observer.observe(exited_state(h.container_of(clean.id), 0))
        observer.observe(exited_state(h.container_of(crash.id), 137))
        assert h.runtime.threads.get(clean.id).status == ThreadStatus.COMPLETED
        assert h.runtime.threads.get(crash.id).status == ThreadStatus.FAILED
        types = seen.types()
        assert "thread_completed" in types and "thread_failed" in types


async def test_an_idle_thread_is_reported_then_stopped_after_its_checks(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        policy = {"idleTimeoutMs": 1000, "maxIdleChecks": 2}
        handle = await h.runtime.threads.spawn(thread_request(policy=policy))
        await seen.until(lambda t: "thread_ready" in t)
        threads = h.runtime.threads
        record = threads._book.get(handle.id)
        now = (record.last_activity_at or 0) + 1.1
        threads._check_idle(record, now)
        threads._check_idle(record, now + 0.5)  # not another whole timeout yet
        assert seen.types().count("thread_idle") == 1
        threads._check_idle(record, now + 1.0)
        await seen.until(lambda t: "thread_stopped" in t)
        assert seen.types().count("thread_idle") == 2
        assert dict(seen.thread())["thread_stopped"]["reason"] == "idle"


async def test_a_restarted_service_gets_its_threads_back_and_runs_what_was_cut_short(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        seen = Seen(h)
        handle = await h.runtime.threads.spawn(thread_request())
        await seen.until(lambda t: "thread_ready" in t)
        containers = dict(h.fake.containers)
        h.fake.hang_turns = True
        await h.runtime.threads.send(handle.id, ThreadInputRequest(message="cut short"))
        await seen.until(lambda _t: h.runtime.threads.get(handle.id).status == "running")
        # The service stops: the turn is cut short and its input kept for after the restart.
        await h.runtime.threads.stop()
        await h.runtime.messaging.close()
        kept = await h.runtime.store.threads()
    assert [body["inputs"] for body in kept] == [[{"message": "cut short", "metadata": {}}]]
    async with harness(tmp_path, ready=False) as h2:
        seen = Seen(h2)
        h2.fake.containers.update(containers)
        for body in kept:
            await asyncio.wrap_future(h2.runtime.store.save_thread(handle.id, body, 0.0))
        await h2.runtime.threads.load()
        h2.fake.turn_outputs.append(answer("done at last"))
        h2.sync()
        await seen.until(lambda t: "thread_turn_complete" in t)
        assert "thread_ready" not in seen.types()  # it went out once, before the restart
        assert dict(seen.thread())["thread_turn_complete"]["output"] == "done at last"
        assert turns_run(h2) == [b"cut short"]


async def test_a_stopping_service_lets_a_threads_spawn_finish_and_the_next_one_primes_it(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        h.fake.hold["start"] = asyncio.Event()
        handle = await h.runtime.threads.spawn(thread_request())
        await Seen(h).until(lambda _t: bool(h.fake.called("start")))
        stopping = asyncio.ensure_future(h.runtime.threads.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # it waits for the spawn under way
        h.fake.hold["start"].set()
        await stopping
        assert h.runtime.registry.get(handle.id).container_id is not None
        containers = dict(h.fake.containers)
        kept = await h.runtime.store.threads()
    async with harness(tmp_path, ready=False) as h2:
        seen = Seen(h2)
        h2.fake.containers.update(containers)
        for body in kept:
            await asyncio.wrap_future(h2.runtime.store.save_thread(handle.id, body, 0.0))
        await h2.runtime.threads.load()
        h2.fake.turn_outputs.append(answer("primed after the restart"))
        h2.sync()  # recovery hands the thread's start-up intent to a new worker
        types = await seen.until(lambda t: "thread_ready" in t)
        assert types == ["thread_output", "thread_turn_complete", "thread_ready"]
        await seen.until(lambda _t: not h2.runtime.journal.owned("thread", handle.id))
        assert h2.runtime.journal.orphans() == []
