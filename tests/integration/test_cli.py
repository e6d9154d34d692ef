"""The ``parallax-docker`` CLI (Typer's runner) against the real service on the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from parallax_docker.cli.main import build_app
from tests.integration.conftest import SESSION
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE
from tests.support.server import ServiceProcess, free_port

TICKER = (
    "trap 'exit 0' TERM; touch /tmp/ready; i=0; "
    "while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"
)
SECRET = "sk-cli-secret-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return build_app()


@pytest.fixture
def cli(app: typer.Typer, service: ServiceProcess) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str, url: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            app,
            ["--url", url or service.url, *args],
            env={"PARALLAX_API_TOKEN": None, **(env or {})},
            prog_name="parallax-docker",
        )

    return run


def spawn_args(*extra: str, name: str | None = None) -> list[str]:
    return [
        "spawn",
        "--name",
        name or f"c-{uuid.uuid4().hex[:10]}",
        "--type",
        "custom",
        "--image",
        AGENT_IMAGE,
        "--memory",
        "64m",
        "--cpu",
        "0.25",
        "--label",
        f"test-session={SESSION}",
        *extra,
    ]


@pytest.fixture
def spawned(cli: Callable[..., Result], engine: Engine) -> Iterator[Callable[..., dict[str, Any]]]:
    """Spawn through the CLI (``--json``); every container is removed after the test."""
    made: list[str] = []

    def do(
        *extra: str, name: str | None = None, env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        result = cli(*spawn_args("--json", *extra, name=name), env=env)
        assert result.exit_code == 0, result.output
        handle: dict[str, Any] = json.loads(result.stdout)
        made.append(handle["containerName"])
        return handle

    yield do
    for name in made:
        engine.remove_container(name)


def ticker_args() -> list[str]:
    return ["--", "/bin/sh", "-c", TICKER]


# -- the lifecycle -------------------------------------------------------------------------------


def test_spawn_takes_every_kind_of_flag(
    spawned: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    env_file = tmp_path / "agent.env"
    env_file.write_text(f"# comment\nexport FROM_FILE='{SECRET}'\n")
    handle = spawned(
        "--role",
        "reviewer",
        "--reports-to",
        "lead",
        "--capability",
        "read",
        "--capability",
        "write",
        "--workdir",
        "/workspace",
        "-e",
        f"INLINE={SECRET}",
        "--env-file",
        str(env_file),
        "--credential",
        "MY_TOKEN=env:CLI_TEST_SECRET",
        "--github-token",
        SECRET,
        "--timeout",
        "600",
        "--idle-timeout",
        "600",
        "--execution-id",
        f"exec-{SESSION}",
        "--label",
        "team=blue",
        env={"CLI_TEST_SECRET": SECRET},
    )
    assert handle["role"] == "reviewer"
    assert handle["reportsTo"] == "lead"
    assert handle["capabilities"] == ["read", "write"]
    assert sorted(handle["envKeys"]) == ["FROM_FILE", "GITHUB_TOKEN", "INLINE", "MY_TOKEN"]
    assert handle["resources"]["memory"] == "64m"
    assert handle["labels"]["team"] == "blue"
    assert SECRET not in json.dumps(handle)


def test_spawn_secret_values_are_never_printed(cli: Callable[..., Result], engine: Engine) -> None:
    agent_id = f"sec-{uuid.uuid4().hex[:8]}"
    try:
        result = cli(*spawn_args("--id", agent_id, "-e", f"K={SECRET}", "--anthropic-key", SECRET))
        assert result.exit_code == 0, result.output
        assert agent_id in result.stdout and "ANTHROPIC_API_KEY" in result.stdout
        assert SECRET not in result.output
    finally:
        engine.remove_container(f"parallax-{agent_id}")


def test_ls_shows_the_agent_in_a_table(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    result = cli("ls", "--type", "custom")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if handle["id"] in line)
    assert handle["name"] in row and "ready" in row


def test_ls_json_is_the_apis_list(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    result = cli("ls", "--json", "--status", "ready")
    body = json.loads(result.stdout)
    assert body["count"] == len(body["agents"])
    assert handle["id"] in [a["id"] for a in body["agents"]]


def test_get_prints_the_agent(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    result = cli("get", handle["id"])
    assert result.exit_code == 0, result.output
    assert handle["containerName"] in result.stdout
    assert json.loads(cli("get", "--json", handle["id"]).stdout)["id"] == handle["id"]


def test_logs_tail_prints_the_last_lines(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline and len(lines) < 3:
        result = cli("logs", handle["id"], "--tail", "3")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        time.sleep(0.2)
    assert len(lines) == 3 and all(line.startswith("tick-") for line in lines)


def test_logs_follow_streams_until_the_agent_stops(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    script = "touch /tmp/ready; sleep 1; for i in 1 2 3; do echo out-$i; done; sleep 0.5; exit 0"
    handle = spawned("--", "/bin/sh", "-c", script)
    result = cli("logs", "-f", handle["id"])
    assert result.exit_code == 0, result.output
    assert [line for line in result.stdout.splitlines() if line.startswith("out-")] == [
        "out-1",
        "out-2",
        "out-3",
    ]


def test_metrics_prints_a_table(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    result = cli("metrics", handle["id"])
    assert result.exit_code == 0, result.output
    assert "MEMORY" in result.stdout and handle["id"] in result.stdout
    assert "64.0 MiB" in result.stdout


def test_metrics_watch_updates_the_table(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    result = cli("metrics", handle["id"], "--watch", "--count", "2", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert handle["id"] in result.stdout


def test_restart_reports_ready(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    result = cli("restart", handle["id"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{handle['id']} ready"


def test_stop_removes_the_container(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    handle = spawned(*ticker_args())
    result = cli("stop", handle["id"], "--timeout", "2")
    assert result.exit_code == 0, result.output
    assert engine.inspect(handle["containerName"]) is None


# -- errors: message, hint and exit code ---------------------------------------------------------


def assert_failed(result: Result, exit_code: int, code: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert f"error [{code}]: " in result.stderr
    assert "\nhint: " in result.stderr
    assert result.stdout == ""


def test_unknown_agent_exits_3(cli: Callable[..., Result]) -> None:
    assert_failed(cli("get", "no-such-agent"), 3, "AGENT_NOT_FOUND")


def test_duplicate_name_exits_4(
    cli: Callable[..., Result], spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned()
    assert_failed(cli(*spawn_args(name=handle["name"])), 4, "CONFLICT")


def test_missing_image_exits_3(cli: Callable[..., Result]) -> None:
    args = spawn_args()
    args[args.index(AGENT_IMAGE)] = "parallax-test/never-built:latest"
    assert_failed(cli(*args), 3, "IMAGE_NOT_FOUND")


def test_forbidden_mount_exits_8(cli: Callable[..., Result]) -> None:
    assert_failed(cli(*spawn_args("-v", "/etc:/host-etc")), 8, "VOLUME_FORBIDDEN")


def test_bad_memory_exits_2(cli: Callable[..., Result]) -> None:
    args = spawn_args()
    args[args.index("64m")] = "lots"
    assert_failed(cli(*args), 2, "VALIDATION_ERROR")


def test_no_service_exits_6(cli: Callable[..., Result]) -> None:
    assert_failed(cli("ls", url=f"http://127.0.0.1:{free_port()}"), 6, "SERVICE_UNREACHABLE")


def test_wrong_token_exits_7(
    cli: Callable[..., Result], start_service: Callable[..., ServiceProcess]
) -> None:
    token = "tok-" + uuid.uuid4().hex
    secured = start_service({"PARALLAX_API_TOKEN": token}, wait_healthy=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if cli("ls", url=secured.url, env={"PARALLAX_API_TOKEN": token}).exit_code == 0:
            break
        time.sleep(0.2)
    assert_failed(cli("ls", url=secured.url), 7, "UNAUTHORIZED")
    result = cli("ls", "--json", url=secured.url, env={"PARALLAX_API_TOKEN": token})
    assert result.exit_code == 0, result.output


# -- gc, send, doctor, completion ----------------------------------------------------------------


def test_gc_dry_run_reports(cli: Callable[..., Result], service: ServiceProcess) -> None:
    result = cli("gc", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] is False


def test_send_waits_for_the_echo_agents_answer_and_messages_show_it(
    cli: Callable[..., Result], engine: Engine, agent_image: Callable[[str], str]
) -> None:
    args = spawn_args()
    args[args.index(AGENT_IMAGE)] = agent_image("echo")
    args[args.index("64m")] = "128m"
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    handle = json.loads(result.stdout)
    try:
        answer = cli("send", handle["id"], "hello 'world' $(x)", "--wait", "--timeout", "30")
        assert answer.exit_code == 0, answer.output
        assert answer.stdout.rstrip("\n") == "hello 'world' $(x)"
        history = json.loads(cli("messages", handle["id"], "--json").stdout)
        assert [(m["direction"], m["content"]) for m in history["messages"]] == [
            ("inbound", "hello 'world' $(x)"),
            ("outbound", "hello 'world' $(x)"),
        ]
        table = cli("messages", handle["id"])
        assert table.exit_code == 0 and "outbound" in table.stdout
    finally:
        engine.remove_container(handle["containerName"])


def test_send_to_a_busy_agent_exits_4(
    cli: Callable[..., Result], engine: Engine, agent_image: Callable[[str], str]
) -> None:
    args = spawn_args("-e", "PARALLAX_ECHO_DELAY_S=5")
    args[args.index(AGENT_IMAGE)] = agent_image("echo")
    args[args.index("64m")] = "128m"
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    handle = json.loads(result.stdout)
    try:
        assert cli("send", handle["id"], "first").exit_code == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if json.loads(cli("get", "--json", handle["id"]).stdout)["status"] == "busy":
                break
            time.sleep(0.1)
        assert_failed(cli("send", handle["id"], "second"), 4, "AGENT_BUSY")
    finally:
        engine.remove_container(handle["containerName"])


def test_doctor_passes_on_this_machine(app: typer.Typer, service_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["doctor"], env=service_env)
    assert result.exit_code == 0, result.output
    for check in ("docker socket", "engine version", "agent network", "free memory"):
        assert check in result.stdout


def test_doctor_fails_and_says_how_when_the_socket_is_missing(
    app: typer.Typer, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["doctor", "--json"], env={"DOCKER_SOCKET": str(tmp_path / "docker.sock")}
    )
    assert result.exit_code == 1, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["docker socket"]["outcome"] == "fail"
    assert "scripts/setup.sh" in checks["docker socket"]["fix"]
    assert checks["engine answers"]["outcome"] == "fail"


def test_shell_completion_completes_commands_and_agent_ids(
    service: ServiceProcess, spawned: Callable[..., dict[str, Any]]
) -> None:
    handle = spawned(*ticker_args())
    env = {
        **os.environ,
        "_PARALLAX_DOCKER_COMPLETE": "complete_bash",
        "COMP_WORDS": "parallax-docker sp",
        "COMP_CWORD": "1",
    }
    argv = [sys.executable, "-m", "parallax_docker.cli.main"]
    commands = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert "spawn" in commands.stdout.split()
    env["COMP_WORDS"] = f"parallax-docker --url {service.url} stop {handle['id'][:8]}"
    env["COMP_CWORD"] = "4"
    ids = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert handle["id"] in ids.stdout.split()
