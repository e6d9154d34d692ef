"""Secret env delivery on Docker (the SecretDelivery capability): a per-agent host file,
bind-mounted read-only into the agent.

``env`` values and credentials never go into the container's ``Env``, which ``docker inspect``
(and anyone who can read the engine's API) shows. The service writes them, per key (an agent's
id, or a warm container's slot), into ``<PARALLAX_SECRETS_DIR>/<key>/env`` as NUL-separated
``KEY=VALUE`` records and mounts that
file read-only at ``/run/parallax/env``, which the project images' entrypoint exports before it
starts the agent (images/entrypoint/lib.sh). Images without that entrypoint get a second file,
``env.sh`` (``export KEY='value'`` lines), and their command is wrapped in
``/bin/sh -c '. /run/parallax/env.sh && exec "$@"'``, so they see the same variables.

The files live as long as the container: they are removed when the agent is removed (stop, a
failed spawn, a container destroyed behind the service's back) and, at start-up, for agents
that no longer exist. A warm container (backends/docker/warm.py) gets empty files at its start
that a claim fills in place and moves to the agent's key. This store makes and writes every one
of these files; nothing else does. See docs/security.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from parallax_docker.backends.base import ImageInfo, MountSpec
from parallax_docker.backends.capabilities import PROJECT_ENTRYPOINT, SecretMounts
from parallax_docker.errors import ConfigError, ValidationError
from parallax_docker.resources import NAME_RE

log = logging.getLogger(__name__)

ENV_FILE_TARGET = "/run/parallax/env"
ENV_SH_TARGET = "/run/parallax/env.sh"
ENV_FILE_NAME = "env"
ENV_SH_NAME = "env.sh"
PROJECT_IMAGE_LABEL = "parallax.image.type"
# For every other image: load env.sh, then run the image's own entrypoint and command. A
# missing or unreadable env.sh stops the shell (POSIX: '.' failing ends a non-interactive
# shell), so the agent never starts without its variables.
SHELL_WRAPPER: tuple[str, ...] = ("/bin/sh", "-c", f'. {ENV_SH_TARGET} && exec "$@"', "sh")
# A directory younger than this is never pruned: a spawn in flight writes it before its
# container exists.
PRUNE_GRACE_S = 120.0


def encode_env(env: Mapping[str, str]) -> bytes:
    """NUL-separated ``KEY=VALUE`` records (values may hold newlines, quotes, '=')."""
    return b"".join(f"{key}={value}".encode() + b"\0" for key, value in env.items())


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def encode_env_sh(env: Mapping[str, str]) -> bytes:
    """``export KEY='value'`` lines that a POSIX shell can source; nothing is ever expanded."""
    return "".join(f"export {key}={_single_quoted(value)}\n" for key, value in env.items()).encode()


def loads_env_itself(image: ImageInfo) -> bool:
    """True for the project's images, whose entrypoint exports ENV_FILE_TARGET."""
    return (
        PROJECT_IMAGE_LABEL in image.labels
        and image.entrypoint is not None
        and image.entrypoint[:1] == (PROJECT_ENTRYPOINT,)
    )


def wrapped_command(
    image: ImageInfo, command: tuple[str, ...] | None, image_ref: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(entrypoint, cmd) that source env.sh and then run what the image would have run.

    Setting an entrypoint drops the image's CMD, so both are passed on explicitly, the way
    Docker combines them: the image's ENTRYPOINT, then the request's command or the image's CMD.
    """
    argv = (image.entrypoint or ()) + (command if command is not None else (image.cmd or ()))
    if not argv:
        raise ValidationError(
            f"image {image_ref[:120]} defines no command",
            resolution="Give the agent a 'command'.",
        )
    return SHELL_WRAPPER, argv


class SecretStore:
    """The per-key secret files under one host directory (created 0700)."""

    def __init__(
        self,
        root: Path,
        *,
        grace_s: float = PRUNE_GRACE_S,
        clock: Callable[[], float] = time.time,
        euid: Callable[[], int] = os.geteuid,
        fchown: Callable[[int, int, int], None] = os.fchown,
        opener: Callable[[str, int], int] = os.open,
    ) -> None:
        self.root = root
        self._fchown = fchown
        self._open = opener
        self._grace_s = grace_s
        self._clock = clock
        self._euid = euid

    def key_dir(self, key: str) -> Path:
        if not NAME_RE.match(key):
            raise ValueError("not a secrets key")
        return self.root / key

    # -- SecretDelivery ---------------------------------------------------------------------

    def deliver(
        self,
        key: str,
        env: Mapping[str, str],
        image: ImageInfo,
        *,
        image_ref: str,
        command: tuple[str, ...] | None,
        uid: int | None,
    ) -> SecretMounts | None:
        """Write the agent's files and say how to mount them; None when there is no env."""
        if not env:
            return None
        native = loads_env_itself(image)
        entrypoint, wrapped = (None, None) if native else wrapped_command(image, command, image_ref)
        folder = self._make_key_dir(key)
        self._write(folder / ENV_FILE_NAME, encode_env(env), uid)
        if not native:
            self._write(folder / ENV_SH_NAME, encode_env_sh(env), uid)
        return SecretMounts(
            mounts=self.mounts(key, shell=not native), entrypoint=entrypoint, command=wrapped
        )

    def remove(self, key: str) -> None:
        """Delete the key's files; nothing happens when there are none."""
        try:
            folder = self.key_dir(key)
        except ValueError:
            return
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Remove the files of keys not in ``keep`` (older than the grace period)."""
        wanted = set(keep)
        removed: list[str] = []
        try:
            with os.scandir(self.root) as found:
                entries = list(found)
        except FileNotFoundError:
            return removed
        except OSError as exc:
            log.warning("cannot read the secrets directory: %s", exc.strerror)
            return removed
        now = self._clock()
        for entry in entries:
            if entry.name in wanted:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if now - info.st_mtime < self._grace_s:
                continue
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            removed.append(entry.name)
        if removed:
            log.info("removed the secret files of %d agent(s) that no longer exist", len(removed))
        return removed

    # -- files made ahead of their values (the warm pool) -----------------------------------

    def mounts(self, key: str, *, shell: bool) -> tuple[MountSpec, ...]:
        """The read-only mounts of ``key``'s files (env.sh too for a ``shell``-wrapped image)."""
        folder = self.key_dir(key)
        mounts = [MountSpec("bind", ENV_FILE_TARGET, str(folder / ENV_FILE_NAME), read_only=True)]
        if shell:
            mounts.append(
                MountSpec("bind", ENV_SH_TARGET, str(folder / ENV_SH_NAME), read_only=True)
            )
        return tuple(mounts)

    def reserve(self, key: str, uid: int | None, *, shell: bool) -> Path:
        """Make ``key``'s folder with empty files, to be filled in place later (``fill``);
        the folder, where the caller may keep files of its own."""
        folder = self._make_key_dir(key)
        for name in (ENV_FILE_NAME, ENV_SH_NAME) if shell else (ENV_FILE_NAME,):
            self._write(folder / name, b"", uid)
        return folder

    def move(self, key: str, new_key: str) -> Path:
        """Give ``key``'s folder to ``new_key`` (whose old files are dropped); the new folder.

        Mounts follow the files: a container keeps the very files it has mounted.
        """
        source, target = self.key_dir(key), self.key_dir(new_key)
        self.remove(new_key)
        try:
            os.rename(source, target)
        except OSError as exc:
            raise ConfigError(
                f"cannot move secret files under {self.root} ({exc.strerror})",
                resolution="Set PARALLAX_SECRETS_DIR to a directory the service can write.",
            ) from None
        return target

    def fill(self, key: str, env: Mapping[str, str]) -> None:
        """Write ``env`` into ``key``'s reserved files in place, keeping their inodes (a
        running container has these very files mounted)."""
        folder = self.key_dir(key)
        self._rewrite(folder / ENV_FILE_NAME, encode_env(env))
        if os.path.lexists(folder / ENV_SH_NAME):
            self._rewrite(folder / ENV_SH_NAME, encode_env_sh(env))

    # -- files ------------------------------------------------------------------------------

    def _make_root(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(self.root)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the secrets directory {self.root} ({exc.strerror})",
                resolution="Set PARALLAX_SECRETS_DIR to a directory the service can write.",
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(
                f"the secrets directory {self.root} is not a directory",
                resolution="Set PARALLAX_SECRETS_DIR to a real directory (not a symlink).",
            )
        if info.st_uid == self._euid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(self.root, 0o700)

    def folder(self, key: str) -> Path:
        """``key``'s private folder (0700), made if need be, for other per-agent files that
        must come and go with its secrets (the heartbeat channel)."""
        return self._make_key_dir(key)

    def _make_key_dir(self, key: str) -> Path:
        self._make_root()
        folder = self.key_dir(key)
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                raise ConfigError(f"{folder} is not a directory")
            os.chmod(folder, 0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create a secrets directory under {self.root} ({exc.strerror})",
                resolution="Set PARALLAX_SECRETS_DIR to a directory the service can write.",
            ) from None
        return folder

    def _write(self, path: Path, data: bytes, uid: int | None) -> Path:
        """Write ``data`` to ``path`` atomically, readable by the image's user only.

        As root with a known uid the file is chowned to it and made 0400. Otherwise (uid unknown,
        or no CAP_CHOWN) it is made 0444 inside the 0700 directory: no other host user can reach
        it, and the container sees it whatever user it runs as.
        """
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        euid = self._euid()
        owner_only = uid is not None and (euid == 0 or uid == euid)
        try:
            fd = os.open(temp, flags, 0o600)
            try:
                _write_all(fd, data)
                if owner_only and uid is not None and euid == 0:
                    try:
                        self._fchown(fd, uid, -1)
                    except PermissionError:
                        # Root without CAP_CHOWN (the service in a container with every
                        # capability dropped): readable by all, inside the 0700 directory.
                        owner_only = False
                os.fchmod(fd, 0o400 if owner_only else 0o444)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise _write_failed(self.root, exc) from None
        return path

    def _rewrite(self, path: Path, data: bytes) -> None:
        """Replace the contents of ``path`` keeping its inode and its (read-only) mode.

        Root writes a 0400 file as it is; without CAP_DAC_OVERRIDE the owner lends itself the
        write bit for the time of the write.
        """
        flags = os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            try:
                fd = self._open(str(path), flags)
            except PermissionError:
                os.chmod(path, mode | stat.S_IWUSR)
                try:
                    fd = self._open(str(path), flags)
                except OSError:
                    os.chmod(path, mode)
                    raise
            try:
                _write_all(fd, data)
            finally:
                os.fchmod(fd, mode)
                os.close(fd)
        except OSError as exc:
            raise _write_failed(self.root, exc) from None


def _write_failed(root: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"cannot write a secret env file under {root} ({exc.strerror})",
        resolution="Set PARALLAX_SECRETS_DIR to a directory the service can write.",
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
