"""``serve --token auto`` / ``PARALLAX_API_TOKEN=auto`` on the real service: a token without
friction, kept owner-only in the state directory, found by the CLI and the Python client."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from parallax_docker.client import Client, UnauthorizedError
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration


def _cli(proc: ServiceProcess, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PARALLAX_") and key not in ("HOST", "PORT")
    }
    env["PARALLAX_STATE_DIR"] = str(state)
    if args[0] == "doctor":
        # doctor reads the service's own settings (an unknown PARALLAX_* is refused there).
        env["PORT"] = str(proc.port)
    else:
        env["PARALLAX_URL"] = proc.url
    return subprocess.run(
        [sys.executable, "-m", "parallax_docker.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _start(
    start_service: Callable[..., ServiceProcess], state: Path, **kwargs: object
) -> ServiceProcess:
    env = {"PARALLAX_API_TOKEN": "auto", "PARALLAX_STATE_DIR": str(state)}
    return start_service(env, wait_healthy=False, **kwargs)


def test_auto_makes_an_owner_only_token_that_the_cli_and_client_find(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    proc = _start(start_service, state)
    token_file = state / "api-token"
    info = token_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    token = token_file.read_text().strip()
    assert len(token) >= 32
    # Without the token: refused. The token never shows in the service's log.
    assert httpx.get(proc.url + "/agents", timeout=10).status_code == 401
    assert token not in proc.logs()
    # The client finds the file through PARALLAX_STATE_DIR, as the service does.
    with Client(proc.url, environ={"PARALLAX_STATE_DIR": str(state)}) as client:
        assert client.list() == []
    with (
        Client(proc.url, environ={"PARALLAX_STATE_DIR": str(tmp_path / "elsewhere")}) as client,
        pytest.raises(UnauthorizedError),
    ):
        client.list()
    # So does the CLI, and doctor says the API is protected.
    listed = _cli(proc, state, "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    doctor = _cli(proc, state, "doctor", "--json")
    assert '"api token"' in doctor.stdout and "required" in doctor.stdout, doctor.stdout


def test_a_second_start_reuses_the_token(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = _start(start_service, state)
    token = (state / "api-token").read_text().strip()
    first.stop()
    second = start_service(
        {"PARALLAX_STATE_DIR": str(state)}, wait_healthy=False, args=("--token", "auto")
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(second.url + "/agents", headers=headers, timeout=10).status_code == 200
    assert (state / "api-token").read_text().strip() == token


@pytest.mark.parametrize("spoil", ["group-readable", "world-readable", "other-owner", "symlink"])
def test_a_token_file_others_could_read_or_swap_stops_the_service(
    start_service: Callable[..., ServiceProcess], tmp_path: Path, spoil: str
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    token_file = state / "api-token"
    if spoil == "symlink":
        (tmp_path / "elsewhere").write_text("a-token-chosen-by-someone-else\n")
        token_file.symlink_to(tmp_path / "elsewhere")
    else:
        token_file.write_text("a-token-of-at-least-16-chars\n")
        token_file.chmod({"group-readable": 0o640, "world-readable": 0o604}.get(spoil, 0o600))
        if spoil == "other-owner":
            os.chown(token_file, 12345, 12345)
    with pytest.raises(RuntimeError, match="exited with 2") as failed:
        _start(start_service, state)
    assert "api-token" in str(failed.value)


def test_without_a_token_the_service_says_once_what_is_exposed(
    service: ServiceProcess,
) -> None:
    notices = [line for line in service.logs().splitlines() if "no API token" in line]
    assert len(notices) == 1
    assert "every local user" in notices[0] and "--token auto" in notices[0]


def test_token_takes_only_auto_on_the_command_line(
    start_service: Callable[..., ServiceProcess],
) -> None:
    with pytest.raises(RuntimeError, match="exited with 2") as failed:
        start_service(args=("--token", "a-secret-on-the-command-line"))
    assert "a-secret-on-the-command-line" not in str(failed.value)
