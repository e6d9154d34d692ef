"""scripts/setup.sh starts the engine (when none answers) with live-restore on, unless the
engine's daemon.json decides it (dockerd refuses an option given both ways)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _options(socket: str, daemon_json: Path) -> list[str]:
    done = subprocess.run(
        ["bash", "-c", '. scripts/lib.sh && dockerd_options "$0" "$1"', socket, str(daemon_json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_the_engine_setup_starts_has_live_restore_on(tmp_path: Path) -> None:
    assert _options("/var/run/docker.sock", tmp_path / "none.json") == ["--live-restore"]
    assert _options("/tmp/d.sock", tmp_path / "none.json") == [
        "-H",
        "unix:///tmp/d.sock",
        "--live-restore",
    ]


def test_a_daemon_json_that_sets_live_restore_is_left_to_decide(tmp_path: Path) -> None:
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"live-restore": false}\n')
    assert _options("/var/run/docker.sock", daemon_json) == []


def test_setup_starts_dockerd_with_these_options() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'dockerd_options "$SOCKET" /etc/docker/daemon.json' in setup
    assert 'dockerd "${options[@]}"' in setup
