"""The state directory's API token (token_file.py): owner-only, reused, found by clients."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from parallax_docker.client.calls import resolve_token
from parallax_docker.errors import ConfigError
from parallax_docker.token_file import ensure_token, find_local_token, read_token, token_path


def test_the_first_start_makes_an_owner_only_token_and_later_ones_reuse_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    token = ensure_token(state)
    info = token_path(state).stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert len(token) >= 32 and ensure_token(state) == token
    assert [p.name for p in state.iterdir()] == ["api-token"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o606])
def test_a_token_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = token_path(tmp_path)
    path.write_text("x" * 20)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="open to other users"):
        read_token(path)


def test_a_token_file_of_another_owner_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    path = token_path(tmp_path)
    path.write_text("x" * 20)
    path.chmod(0o600)
    os.chown(path, 4242, 4242)
    with pytest.raises(ConfigError, match="belongs to uid 4242"):
        read_token(path)


def test_a_symlinked_token_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "chosen").write_text("x" * 20)
    (tmp_path / "chosen").chmod(0o600)
    token_path(tmp_path).symlink_to(tmp_path / "chosen")
    with pytest.raises(ConfigError, match="symbolic link"):
        ensure_token(tmp_path)


def test_clients_find_the_token_only_for_a_loopback_service(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    env = {"PARALLAX_STATE_DIR": str(tmp_path)}
    for url in ("http://127.0.0.1:3200", "http://localhost:1", "http://[::1]:3200"):
        assert find_local_token(url, env) == token
    for url in ("http://10.0.0.5:3200", "https://parallax.example", "http://user@127.0.0.1"):
        assert find_local_token(url, env) is None


def test_an_explicit_token_wins_and_auto_means_the_file(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    env = {"PARALLAX_STATE_DIR": str(tmp_path), "PARALLAX_API_TOKEN": "auto"}
    assert resolve_token(None, env, "http://127.0.0.1:3200") == token
    assert (
        resolve_token("given-token-xxxxxxxx", env, "http://127.0.0.1:3200")
        == "given-token-xxxxxxxx"
    )
    assert resolve_token(None, {"PARALLAX_STATE_DIR": str(tmp_path / "none")}) is None
