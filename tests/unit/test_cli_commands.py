"""The command line itself: complete help, completion script, doctor's checks (fake backend)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from parallax_docker.backends.base import EngineInfo
from parallax_docker.cli import doctor, token_check
from parallax_docker.cli.connection import complete_status
from parallax_docker.cli.main import build_app
from parallax_docker.config import load_settings
from parallax_docker.errors import SocketError
from parallax_docker.models import AgentStatus
from tests.unit.fakes import FakeBackend, engine_info, image


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return build_app()


def all_commands(app: typer.Typer) -> list[tuple[list[str], Any]]:
    # Typer may carry its own copy of Click: recognise groups and params by their attributes.
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk([*path, name], sub)

    walk([], get_command(app))
    return found


def found_params(app: typer.Typer) -> list[Any]:
    return [param for _, command in all_commands(app) for param in command.params]


def test_every_command_answers_help(app: typer.Typer) -> None:
    runner = CliRunner()
    for path, _ in all_commands(app):
        result = runner.invoke(app, [*path, "--help"], prog_name="parallax-docker")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: parallax-docker" in result.output


def test_every_command_and_option_has_help_text(app: typer.Typer) -> None:
    missing = []
    for path, command in all_commands(app):
        if path and not (command.help or command.short_help):
            missing.append(" ".join(path))
        for param in command.params:
            kind = param.param_type_name
            if kind == "option" and not param.help and param.name != "help":
                missing.append(f"{' '.join(path)} {param.opts[0]}")
            if kind == "argument" and not getattr(param, "help", None):
                missing.append(f"{' '.join(path)} <{param.name}>")
    assert missing == []
    assert len(found_params(app)) > 60


def test_the_issue_commands_are_all_there(app: typer.Typer) -> None:
    names = {" ".join(path) for path, _ in all_commands(app)}
    wanted = {"serve", "spawn", "ls", "get", "logs", "metrics", "send", "stop", "restart"}
    wanted |= {"images build", "images ls", "doctor", "gc"}
    assert wanted <= names


@pytest.mark.parametrize(
    ("shell", "lines"),
    [
        (
            "bash",
            (
                "_PARALLAX_DOCKER_COMPLETE=complete_bash",
                "complete -o default -F _parallax_docker_completion parallax-docker",
            ),
        ),
        ("zsh", ("#compdef parallax-docker", "_PARALLAX_DOCKER_COMPLETE=complete_zsh")),
    ],
)
def test_the_completion_script_is_the_shells_and_names_the_command(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch, shell: str, lines: tuple[str, ...]
) -> None:
    # The script is for the shell the command runs from (Typer looks for it among the parent
    # processes): here that is set, not left to how the suite was started (with no shell above
    # it, as under nohup, none is found and the command fails, which is Typer's to say).
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: shell)
    result = CliRunner().invoke(app, ["--show-completion"], prog_name="parallax-docker")
    assert result.exit_code == 0, result.output
    for line in lines:
        assert line in result.output


def test_status_completion_offers_the_models_statuses() -> None:
    assert complete_status("") == [s.value for s in AgentStatus]
    assert complete_status("st") == ["starting", "stopping", "stopped"]


def test_a_usage_error_exits_2(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["spawn", "--name", "x", "--type", "nope"])
    assert result.exit_code == 2


# -- doctor ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "parsed"),
    [("20.10.24+dfsg1", (20, 10)), ("26.1.5", (26, 1)), ("v19.03.1", (19, 3)), ("dev", None)],
)
def test_engine_version_is_parsed(version: str, parsed: tuple[int, int] | None) -> None:
    assert doctor.engine_version(version) == parsed


def test_an_old_engine_fails_with_the_install_hint() -> None:
    old = EngineInfo("19.03.15", "1.40", 1, 1, "1")
    checks = {c.name: c for c in doctor.check_engine(old, None, "/s")}
    assert checks["engine version"].outcome == "fail"
    assert "20.10" in checks["engine version"].fix


def test_live_restore_off_is_a_warning_saying_how_to_turn_it_on() -> None:
    on = doctor.check_live_restore(dataclasses.replace(engine_info(), live_restore=True))
    assert on.outcome == "ok"
    off = doctor.check_live_restore(engine_info())
    assert off.outcome == "warn" and "live-restore" in off.fix and "HUP" in off.fix


def test_too_little_memory_fails() -> None:
    settings = load_settings({})
    assert doctor.check_memory(1024, settings).outcome == "fail"
    assert doctor.check_memory(8 * 1024**3, settings).outcome == "ok"


async def _nothing_answers(url: str) -> int | None:
    return None


@pytest.mark.parametrize(
    ("status", "env", "outcome", "words"),
    [
        (401, {}, "ok", "required"),
        (200, {}, "warn", "every local user"),
        (None, {"PARALLAX_API_TOKEN": "auto"}, "ok", "configured"),
        (None, {}, "warn", "none configured"),
    ],
)
async def test_doctor_says_whether_the_api_asks_for_a_token(
    status: int | None, env: dict[str, str], outcome: str, words: str
) -> None:
    async def probe(url: str) -> int | None:
        assert url == "http://127.0.0.1:3200"
        return status

    check = await token_check.check_api_token(load_settings({}), env, probe)
    assert (check.outcome, words in check.detail) == (outcome, True)
    if outcome == "warn":
        assert "--token auto" in check.fix


async def test_an_unreachable_engine_fails_and_skips_network_and_images() -> None:
    backend = FakeBackend()
    backend.fail["ping"] = SocketError("no engine")
    checks = await doctor.run_checks(
        load_settings({}), backend, memory=lambda: 8 * 1024**3, token_probe=_nothing_answers
    )
    by_name = {c.name: c for c in checks}
    assert by_name["engine answers"].outcome == "fail"
    assert "agent network" not in by_name and "agent images" not in by_name


async def test_missing_images_are_a_warning_naming_the_build_command() -> None:
    backend = FakeBackend()
    backend.info = engine_info()
    settings = load_settings({})
    backend.images[settings.image_for("claude")] = image()
    checks = await doctor.run_checks(
        settings, backend, memory=lambda: 8 * 1024**3, token_probe=_nothing_answers
    )
    images = next(c for c in checks if c.name == "agent images")
    assert images.outcome == "warn"
    assert "claude" in images.detail.split(";")[0]
    assert images.fix.startswith("parallax-docker images build")
