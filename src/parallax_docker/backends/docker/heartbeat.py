"""Heartbeats on Docker (the Heartbeats capability): one FIFO per agent, in the agent's private
folder of the secret store, bind-mounted read-write at ``/run/parallax/heartbeat``.

The project images' entrypoint writes one line into it every few seconds ("ok", or what is
wrong); the service learns the time of the last beat from the FIFO's modification time (a stat)
and drains what was written (a non-blocking read): no process runs in the container for it, and
the engine is not involved at all. Docker's own HEALTHCHECK is switched off for such agents.

Why a FIFO, mounted alone, and what an agent can do with it:
- it can write into it, which bumps its modification time (the mount is read-write because the
  kernel updates that time only through a writable mount), and read from it (draining its own
  beats only makes itself look silent);
- nothing it writes reaches a disk: a FIFO holds at most one pipe buffer (64 KiB) in the kernel,
  charged to the writer, so a flooding agent fills nothing on the host (a regular file would
  grow without bound);
- only the FIFO is mounted, never its folder: the agent sees none of the other files and cannot
  create, link or rename anything on the host, and a mount point cannot be unlinked or renamed
  over (EBUSY); the FIFO belongs to the service, so the agent cannot change its mode or owner
  (0666: the entrypoint holds it open read-write, so that a write never waits for a reader);
- each agent has its own FIFO under its own key: none can write another's, so none can fake
  another agent's health. What an agent says about itself is its own business, as with any
  health check that runs in the container.
The service refuses a channel that is not a FIFO (lstat, O_NOFOLLOW) and reads at most one
pipe buffer per look.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from parallax_docker.backends.base import MountSpec
from parallax_docker.backends.capabilities import Beat
from parallax_docker.backends.docker.secrets import SecretStore
from parallax_docker.errors import ConfigError

CHANNEL_NAME = "heartbeat"
CHANNEL_TARGET = "/run/parallax/heartbeat"
# Open to the agent whatever its uid; the key's folder (0700) keeps every host user out.
_MODE = 0o666
_MAX_READ = 65536
# The longest report kept (the rest of a line is dropped).
_MAX_REPORT = 200


class DockerHeartbeats:
    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def channel(self, key: str) -> Path:
        return self._store.key_dir(key) / CHANNEL_NAME

    def attach(self, key: str) -> tuple[MountSpec, ...]:
        path = self._store.folder(key) / CHANNEL_NAME
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            try:
                os.mkfifo(path, _MODE)
                os.chmod(path, _MODE)  # whatever the umask took away
            except OSError as exc:
                raise ConfigError(
                    f"cannot make a heartbeat channel under {self._store.root} ({exc.strerror})",
                    resolution="Set PARALLAX_SECRETS_DIR to a directory the service can write.",
                ) from None
        else:
            if not stat.S_ISFIFO(info.st_mode):
                raise ConfigError(f"{path} is not a FIFO; remove it")
        return (MountSpec("bind", CHANNEL_TARGET, str(path), read_only=False),)

    def read(self, key: str) -> Beat | None:
        try:
            path = self.channel(key)
            info = os.lstat(path)
        except (ValueError, OSError):
            return None
        if not stat.S_ISFIFO(info.st_mode):
            return None
        return Beat(at=info.st_mtime, report=_last_line(_drain(path)))


def _drain(path: Path) -> bytes:
    """What is waiting in the FIFO (never blocks: no writer, or nothing written, is b"")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        with contextlib.suppress(BlockingIOError):
            return os.read(fd, _MAX_READ)
        return b""
    finally:
        os.close(fd)


def _last_line(data: bytes) -> str | None:
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return None
    text = lines[-1][:_MAX_REPORT].decode("utf-8", errors="replace")
    # Printable only: the report goes into handles, events and logs.
    return "".join(ch if ch.isprintable() else "?" for ch in text).strip() or None
