"""``parallax-docker threads ...`` and the Python client's thread methods, against the real
service on the real engine."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from parallax_docker.cli.main import build_app
from parallax_docker.client import AsyncClient, Client
from parallax_docker.errors import InputUnsupportedError, ThreadNotFoundError
from tests.integration.conftest import PREFIX, STATE_DIR
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return build_app()


@pytest.fixture
def cli(app: typer.Typer, service: ServiceProcess) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(
            app,
            ["--url", service.url, *args],
            env={"PARALLAX_API_TOKEN": None},
            prog_name="parallax-docker",
        )

    return run


@pytest.fixture
def thread_ids(engine: Engine) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for thread_id in made:
        engine.remove_container(f"parallax-{thread_id}")


def test_the_threads_commands_spawn_list_talk_follow_and_stop(
    cli: Callable[..., Result],
    agent_image: Callable[[str], str],
    engine: Engine,
    thread_ids: list[str],
    tmp_path: Path,
) -> None:
    execution_id = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    thread_id = f"{execution_id}-thread-0"
    thread_ids.append(thread_id)
    memory = tmp_path / "memory.md"
    memory.write_text("notes for the thread\n")
    spawned = cli(
        "threads", "spawn", "-x", execution_id, "-t", "custom", "--id", thread_id,
        "--image", agent_image("echo"), "-o", "Objective here.\nCONFIDENCE: 0.6",
        "--context-file", f".parallax/memory.md={memory}", "--role", "qa", "--wait",
    )  # fmt: skip
    assert spawned.exit_code == 0, spawned.output
    assert "thread_turn_complete confidence=0.6" in spawned.stdout
    assert "Objective here." in spawned.stdout
    code, text = engine.exec(f"parallax-{thread_id}", "cat", "/workspace/.parallax/memory.md")
    assert (code, text) == (0, "notes for the thread\n")

    listed = cli("threads", "ls", "--execution", execution_id, "--status", "ready", "--json")
    assert listed.exit_code == 0, listed.output
    assert [t["id"] for t in json.loads(listed.stdout)["threads"]] == [thread_id]
    table = cli("threads", "ls", "--execution", execution_id)
    assert thread_id in table.stdout and "ready" in table.stdout
    shown = cli("threads", "get", thread_id)
    assert "Objective here." in shown.stdout and "qa" in shown.stdout

    sent = cli("threads", "send", thread_id, "second message", "--wait")
    assert sent.exit_code == 0, sent.output
    assert "second message" in sent.stdout
    refused = cli("threads", "send", thread_id, "--key", "ENTER")
    assert refused.exit_code == 2 and "INPUT_UNSUPPORTED" in refused.stderr
    nothing = cli("threads", "send", thread_id, "--key", "C-c")
    assert nothing.exit_code == 4 and "THREAD_STATE" in nothing.stderr

    events = cli("threads", "events", thread_id, "--json")
    assert events.exit_code == 0, events.output
    types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert types.count("thread_ready") == 1 and types.count("thread_turn_complete") == 2

    stopped = cli("threads", "stop", thread_id, "--timeout", "2")
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(cli("threads", "get", thread_id, "--json").stdout)["status"] == "stopped"
    missing = cli("threads", "get", "no-such-thread")
    assert missing.exit_code == 3 and "THREAD_NOT_FOUND" in missing.stderr


def test_the_python_clients_drive_a_thread(
    service: ServiceProcess, agent_image: Callable[[str], str], thread_ids: list[str]
) -> None:
    execution_id = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    with Client(service.url) as client:
        thread = client.spawn_thread(
            execution_id=execution_id,
            name="client thread",
            agent_type="custom",
            objective="from the client",
            image=agent_image("echo"),
            env={"SOME_KEY": "secret-value"},
        )
        thread_ids.append(thread.id)
        assert thread.execution_id == execution_id and thread.status == "starting"
        poll(lambda: client.get_thread(thread.id).status, "ready".__eq__, 60)
        assert [t.id for t in client.list_threads(execution_id=execution_id)] == [thread.id]
        client.send_to_thread(thread.id, "next", metadata={"step": 2})
        poll(
            lambda: [e.type for e in client.thread_events(thread.id)].count("thread_turn_complete"),
            (2).__eq__,
            30,
        )
        last = client.thread_events(thread.id, limit=1)[0]
        assert last.type == "thread_turn_complete" and last.data["output"] == "next"
        # The env value is the agent's secret: not in the thread, its events, or what is kept.
        shown = client.get_thread(thread.id).model_dump_json()
        shown += "".join(e.model_dump_json() for e in client.thread_events(thread.id))
        assert "secret-value" not in shown
        kept = [p for p in STATE_DIR.rglob("*") if p.is_file()]
        assert kept and not any(b"secret-value" in p.read_bytes() for p in kept)
        with pytest.raises(InputUnsupportedError):
            client.send_to_thread(thread.id, keys=["ENTER"])
        with pytest.raises(ThreadNotFoundError):
            client.get_thread("no-such-thread")

        async def stop() -> str:
            async with AsyncClient(service.url) as aclient:
                await aclient.stop_thread(thread.id, force=True)
                return (await aclient.get_thread(thread.id)).status

        assert asyncio.run(stop()) == "stopped"
