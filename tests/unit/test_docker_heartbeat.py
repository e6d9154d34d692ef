"""The heartbeat channel on Docker (backends/docker/heartbeat.py): a FIFO in the agent's private
folder, read with a stat and a non-blocking read; written here as the entrypoint would."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from parallax_docker.backends.docker.heartbeat import CHANNEL_TARGET, DockerHeartbeats
from parallax_docker.backends.docker.secrets import SecretStore


class Entrypoint:
    """Holds the FIFO read-write, as the entrypoint does (a FIFO keeps what was written only
    while someone has it open), and writes beats into it."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def beat(self, line: bytes) -> None:
        os.write(self.fd, line)

    def close(self) -> None:
        os.close(self.fd)


def test_attach_makes_a_fifo_in_the_agents_private_folder_mounted_alone(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    beats = DockerHeartbeats(store)
    (mount,) = beats.attach("agent-1")
    path = Path(mount.source)
    info = os.lstat(path)
    assert stat.S_ISFIFO(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o666
    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
    assert path.parent == tmp_path / "secrets" / "agent-1"
    # Only the FIFO goes into the container, writable (its time moves only through a
    # writable mount), never the folder with the secret files.
    assert (mount.kind, mount.target, mount.read_only) == ("bind", CHANNEL_TARGET, False)
    assert beats.attach("agent-1") == (mount,)  # again: the same channel


def test_read_gives_the_last_beats_time_and_the_last_line_once(tmp_path: Path) -> None:
    beats = DockerHeartbeats(SecretStore(tmp_path / "secrets"))
    (mount,) = beats.attach("a1")
    first = beats.read("a1")
    assert first is not None and first.report is None
    agent = Entrypoint(Path(mount.source))
    time.sleep(0.02)
    agent.beat(b"ok\nprocess 7 is stopped\n")
    beat = beats.read("a1")
    assert beat is not None and beat.report == "process 7 is stopped"
    assert beat.at > first.at
    again = beats.read("a1")
    assert again is not None and again.report is None and again.at == beat.at
    agent.close()


def test_a_flood_fills_one_pipe_buffer_and_reports_are_printable(tmp_path: Path) -> None:
    beats = DockerHeartbeats(SecretStore(tmp_path / "secrets"))
    (mount,) = beats.attach("a1")
    agent = Entrypoint(Path(mount.source))
    flooded = 0
    try:
        while True:
            flooded += os.write(agent.fd, b"y" * 4096)
    except BlockingIOError:
        pass
    # Nothing reaches a disk: the kernel holds one pipe buffer and then refuses more.
    assert 0 < flooded <= 1024 * 1024
    assert os.lstat(mount.source).st_size == 0
    while (beat := beats.read("a1")) is not None and beat.report is not None:
        pass
    agent.beat(b"\x1b[31mred\x07" + b"x" * 500 + b"\n")
    beat = beats.read("a1")
    assert beat is not None and beat.report is not None
    assert beat.report.startswith("?[31mred?xxx")
    assert beat.report.isprintable() and len(beat.report) <= 200
    agent.close()


def test_no_channel_or_not_a_fifo_reads_as_none(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    beats = DockerHeartbeats(store)
    assert beats.read("nobody") is None
    assert beats.read("../escape") is None
    folder = store.folder("a1")
    (folder / "heartbeat").write_text("ok\n")
    assert beats.read("a1") is None


def test_the_channel_goes_with_the_agents_secret_files(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    beats = DockerHeartbeats(store)
    beats.attach("pool-abc")
    store.move("pool-abc", "a1")
    assert beats.read("a1") is not None and beats.read("pool-abc") is None
    store.remove("a1")
    assert beats.read("a1") is None
