"""What `serve` says and decides about the token (cli/exposure.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallax_docker.cli.exposure import exposure_notice, token_overrides
from parallax_docker.config import load_settings
from parallax_docker.errors import ConfigError


def test_without_a_token_the_notice_says_who_can_use_the_api() -> None:
    notice = exposure_notice(load_settings({}))
    assert notice is not None
    assert (
        "every local user" in notice and "Web pages cannot" in notice and "--token auto" in notice
    )
    assert exposure_notice(load_settings({"PARALLAX_API_TOKEN": "t" * 20})) is None


def test_auto_reads_or_makes_the_state_directorys_token(tmp_path: Path) -> None:
    env = {"PARALLAX_API_TOKEN": "auto", "PARALLAX_STATE_DIR": str(tmp_path)}
    settings = load_settings(env)
    assert settings.api_token is None  # "auto" is not itself a token
    first = token_overrides(settings, None, env)["api_token"]
    assert token_overrides(settings, "auto", {})["api_token"] == first


def test_the_command_line_takes_no_literal_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        token_overrides(load_settings({}), "literal-token-value", {})
    assert "literal-token-value" not in refused.value.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PARALLAX_ALLOWED_ORIGINS", "*"),
        ("PARALLAX_ALLOWED_ORIGINS", "null"),
        ("PARALLAX_ALLOWED_ORIGINS", "http://x/path"),
        ("PARALLAX_ALLOWED_HOSTS", "bad host"),
    ],
)
def test_invalid_hosts_and_origins_stop_the_service(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})
