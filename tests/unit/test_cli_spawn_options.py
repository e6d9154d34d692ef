"""Spawn options -> API fields: pairs, env files, secrets from env/file/stdin, never echoed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from parallax_docker.cli.spawn_options import (
    parse_credentials,
    parse_env,
    parse_labels,
    read_env_file,
    resolve_secret,
    spawn_fields,
)
from parallax_docker.errors import ValidationError
from parallax_docker.models import SpawnRequest

SECRET = "sk-do-not-print"


def test_labels_split_at_the_first_equals() -> None:
    assert parse_labels(["a=b=c", "x="]) == {"a": "b=c", "x": ""}


def test_a_pair_without_equals_is_refused_without_its_value() -> None:
    with pytest.raises(ValidationError):
        parse_labels(["novalue"])


def test_env_key_alone_takes_the_callers_value() -> None:
    assert parse_env(["TOKEN", "B=2"], environ={"TOKEN": SECRET}) == {"TOKEN": SECRET, "B": "2"}


def test_env_key_missing_from_the_callers_environment_is_named() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_env(["MISSING"], environ={})
    assert "MISSING" in caught.value.message


def test_env_file_skips_comments_and_strips_export_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "a.env"
    path.write_text("# c\n\nexport A='1 2'\nB=\"x\"\nC=a=b\nD=\n")
    assert read_env_file(path) == {"A": "1 2", "B": "x", "C": "a=b", "D": ""}


def test_env_file_bad_line_is_named_by_number_not_content(tmp_path: Path) -> None:
    path = tmp_path / "a.env"
    path.write_text(f"A=1\n{SECRET}\n")
    with pytest.raises(ValidationError) as caught:
        read_env_file(path)
    assert "line 2" in caught.value.message
    assert SECRET not in caught.value.message


def test_secret_from_env_file_and_stdin(tmp_path: Path) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text(SECRET + "\n")
    assert resolve_secret("env:K", "--x", environ={"K": SECRET}) == SECRET
    assert resolve_secret(f"file:{secret_file}", "--x") == SECRET
    assert resolve_secret("-", "--x", stdin=io.StringIO(SECRET + "\n")) == SECRET
    assert resolve_secret(SECRET, "--x") == SECRET


def test_secret_errors_name_the_source_not_a_value(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        resolve_secret("env:NOPE", "--anthropic-key", environ={})
    assert "NOPE" in caught.value.message and "--anthropic-key" in caught.value.message
    with pytest.raises(ValidationError):
        resolve_secret(f"file:{tmp_path / 'none'}", "--x")


def test_credentials_split_named_and_custom() -> None:
    credentials = parse_credentials(
        ["githubToken=env:GH", "MY_API=v"],
        {"anthropicKey": SECRET, "openaiKey": None},
        environ={"GH": "gh"},
    )
    assert credentials == {"githubToken": "gh", "anthropicKey": SECRET, "custom": {"MY_API": "v"}}


def test_no_credentials_is_none() -> None:
    assert parse_credentials([], {"anthropicKey": None}) is None


def test_spawn_fields_are_a_valid_spawn_request() -> None:
    fields = spawn_fields(
        name="n",
        agent_type="custom",
        agent_id="a-1",
        role="r",
        reports_to="lead",
        capabilities=["c"],
        workdir="/workspace",
        env={"A": "1"},
        credentials={"anthropicKey": "k"},
        memory="64m",
        cpu="0.5",
        timeout_s=60,
        auto_restart=True,
        idle_timeout_s=30,
        execution_id="e",
        volumes=["v:/data"],
        network="none",
        command=["sh", "-c", "true"],
        image="img",
        labels={"k": "v"},
    )
    request = SpawnRequest.model_validate(fields)
    assert request.reports_to == "lead"
    assert request.resources is not None and request.resources.timeout == 60
    assert request.auto_restart and request.idle_timeout == 30
    assert request.command == ["sh", "-c", "true"]


def test_spawn_fields_leave_unset_options_out() -> None:
    assert spawn_fields(name="n", agent_type="claude", command=[]) == {
        "name": "n",
        "type": "claude",
    }
