"""The API token kept in the state directory: ``serve --token auto`` / ``PARALLAX_API_TOKEN=auto``.

On its first start the service makes a random token and writes it to
``<PARALLAX_STATE_DIR>/api-token``, created ``0600`` and owned by the service's user; later starts
read the same file. A file that another user owns, that group or others may read or write, or
that is not a plain file (a symlink) stops the service: whoever could read or replace it could
use or choose the token.

The CLI and the Python client read the same file when they are given no token, with the same
state directory resolution as the service (``PARALLAX_STATE_DIR``, else the default), and only
for a service on a loopback address: the token is this machine's, never sent elsewhere.
A user who cannot read the file gets no token, and the service answers 401.

Used by the service (config, cli) and by the client, so it imports neither.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from parallax_docker.errors import ConfigError
from parallax_docker.origins import is_loopback, parse_authority

AUTO_TOKEN = "auto"  # noqa: S105 - a keyword, not a token
DEFAULT_STATE_DIR = Path("/var/lib/parallax-docker")
STATE_DIR_ENV = "PARALLAX_STATE_DIR"
TOKEN_FILE_NAME = "api-token"  # noqa: S105 - a file name
_TOKEN_BYTES = 32
_MAX_FILE_BYTES = 4096


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE_NAME


def state_dir_from(environ: Mapping[str, str]) -> Path:
    """The state directory the service would use (the client has no settings to ask)."""
    value = environ.get(STATE_DIR_ENV, "").strip()
    return Path(value) if value.startswith("/") else DEFAULT_STATE_DIR


def ensure_token(state_dir: Path) -> str:
    """The token in ``state_dir``, made on the first call (``0600``, this user's)."""
    path = token_path(state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists() and not path.is_symlink():
            _create(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the API token file {path} ({exc.strerror})",
            resolution="Make PARALLAX_STATE_DIR a directory this user can write.",
        ) from None
    return read_token(path)


def _create(path: Path) -> None:
    # Written in full under another name, then linked into place: a concurrent start sees no
    # half-written file, and link() fails rather than replace one that appeared meanwhile.
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(_TOKEN_BYTES) + "\n")
        with contextlib.suppress(FileExistsError):  # another start made it first
            os.link(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def read_token(path: Path) -> str:
    """Read the token file, refusing one another user could read, write or swap."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise ConfigError(
            f"cannot read the API token file {path} ({reason})",
            resolution=f"Remove {path}; the service makes a new one (owner-only) at start.",
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _check_private(path, info)
        text = handle.read(_MAX_FILE_BYTES).decode("ascii", errors="replace").strip()
    if not text:
        raise ConfigError(
            f"the API token file {path} is empty",
            resolution=f"Remove {path}; the service makes a new one at start.",
        )
    return text


def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"the API token file {path} is not a regular file")
    if info.st_uid != os.geteuid():
        raise ConfigError(
            f"the API token file {path} belongs to uid {info.st_uid}, not to this user "
            f"(uid {os.geteuid()})",
            resolution=f"Remove {path}, or run the service as its owner.",
        )
    if info.st_mode & 0o077:
        raise ConfigError(
            f"the API token file {path} is open to other users "
            f"(mode {stat.S_IMODE(info.st_mode):04o})",
            resolution=f"chmod 600 {path} (and replace the token if others may have read it).",
        )


def find_local_token(url: str, environ: Mapping[str, str]) -> str | None:
    """The state directory's token for a client of a loopback ``url``; None when unreadable."""
    if not _is_loopback_url(url):
        return None
    try:
        fd = os.open(token_path(state_dir_from(environ)), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        text = handle.read(_MAX_FILE_BYTES).decode("ascii", errors="replace").strip()
    return text or None


def _is_loopback_url(url: str) -> bool:
    try:
        authority = parse_authority(urlsplit(url).netloc)
    except ValueError:
        return False
    return authority is not None and is_loopback(authority)
