"""Which host paths a request may bind-mount into an agent, read-only and read-write.

Pure policy: it reads the host's file metadata (to resolve symlinks and ``..``, to tell a socket
from a folder) and its user database (to know the home folders), never the engine.

The rules, from what a bind mount gives the agent (docs/security.md has the table):

- **Read-write only where the operator said so.** Whatever an agent can write, a host process may
  later run or read: a writable host folder outside ``PARALLAX_ALLOWED_HOST_PATHS`` is refused,
  so by default every read-write host mount is.
- **Never what the host runs or is configured by, nor credentials**, read-only or not, as
  themselves, under them, or as a folder that contains them (a folder mount shows all below it):
  ``SYSTEM_TREES``; the folders ``EXACT`` (the root and the shared scratch and mount points,
  whose children are fine); in every home folder the home itself, its hidden entries (shell
  start-up files, ``~/.ssh``, ``~/.aws``, ``~/.config``, ``~/.local``, ...) and ``~/bin``;
  a folder or file named in ``CREDENTIAL_NAMES`` anywhere; the sockets' folders in the shared
  scratch folders; and the service's own paths (the Docker socket, the secrets and state
  directories).
- Decided **by name first**, on the resolved path, so that a refusal does not tell whether a
  protected path exists; then by what the path is: sockets, devices and FIFOs, a file with other
  hard links, or another name (a bind mount) of a protected folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import pwd
import stat
from collections.abc import Iterable
from pathlib import PurePosixPath

from parallax_docker.errors import ValidationError, VolumeForbiddenError

# What the host executes and the configuration it reads (/etc, /usr, /lib*, /opt, /boot), its
# kernel views and devices, its services' state, logs, spools, caches and sockets (/var, /run),
# and root's home. /var holds /var/run, /var/lib/docker, /var/spool/cron, /var/backups, ...
SYSTEM_TREES: tuple[str, ...] = (
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/efi",
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/snap",
    "/nix",
    "/var",
    "/run",
    "/root",
    "/lost+found",
)
# Below these a path is not in SYSTEM_TREES (/var/tmp is scratch space like /tmp).
TREE_EXCEPTIONS: tuple[str, ...] = ("/var/tmp",)  # noqa: S108 - host paths judged, not used
# Refused as themselves only: they gather everyone's files, their children are fine.
SCRATCH = ("/tmp", "/var/tmp")  # noqa: S108 - host paths judged, not used
EXACT: tuple[str, ...] = ("/", *SCRATCH, "/home", "/mnt", "/media", "/srv")
# Other users' sockets and tickets in the scratch folders (X11, ssh-agent, tmux, kerberos).
SCRATCH_PRIVATE: tuple[str, ...] = (
    ".*-unix",
    "ssh-*",
    "tmux-*",
    "systemd-private-*",
    "krb5cc*",
)
# Credential stores by name, wherever they are (a copy of a home, a backup).
CREDENTIAL_NAMES: frozenset[str] = frozenset(
    {
        ".ssh",
        ".gnupg",
        ".aws",
        ".azure",
        ".kube",
        ".docker",
        ".password-store",
        ".netrc",
        ".git-credentials",
        ".pgpass",
        ".vault-token",
        ".npmrc",
        ".pypirc",
    }
)
# In a home folder, besides the hidden entries: where the user's own programs are run from.
HOME_PRIVATE: tuple[str, ...] = ("bin",)
ALLOW_LIST_SETTING = "PARALLAX_ALLOWED_HOST_PATHS"


def within(path: str, parent: str) -> bool:
    return path == parent or parent == "/" or path.startswith(parent.rstrip("/") + "/")


def system_homes() -> list[str]:
    """Every home folder of this host: the user database's, /root and each folder in /home."""
    homes = {entry.pw_dir for entry in pwd.getpwall() if entry.pw_dir.startswith("/")}
    homes.add("/root")
    with contextlib.suppress(OSError):  # no /home
        homes.update(
            entry.path for entry in os.scandir("/home") if entry.is_dir(follow_symlinks=False)
        )
    return _real_homes(homes)


def _real_homes(homes: Iterable[str]) -> list[str]:
    # Service users' home "/" (systemd's) makes the root no home: it is refused by EXACT.
    return sorted({os.path.realpath(home) for home in homes} - {"/"})


def protected_reason(path: str, homes: Iterable[str], own: Iterable[str]) -> str | None:
    """Why the resolved ``path`` may not be mounted at all, by its name only (None: it may)."""
    for tree in (*SYSTEM_TREES, *own):
        exempt = tree in SYSTEM_TREES and any(
            within(path, ok) and path != ok for ok in TREE_EXCEPTIONS
        )
        if (within(path, tree) and not exempt) or within(tree, path):
            return "is or contains a protected system path"
    if path in EXACT:
        return "is a protected system path"
    parts = PurePosixPath(path).parts
    if any(part in CREDENTIAL_NAMES for part in parts):
        return "is or lies in a credentials folder"
    for scratch in SCRATCH:
        if within(path, scratch) and path != scratch:
            first = PurePosixPath(path).relative_to(scratch).parts[0]
            if any(fnmatch.fnmatchcase(first, pattern) for pattern in SCRATCH_PRIVATE):
                return "is another user's socket or ticket folder"
    for home in homes:
        if within(home, path):
            return "is or contains a home folder (its credentials and start-up files)"
        if within(path, home):
            first = PurePosixPath(path).relative_to(home).parts[0]
            if first.startswith(".") or first in HOME_PRIVATE:
                return "is a home folder's private entry (credentials, configuration, programs)"
    return None


def check_host_path(
    source: str,
    *,
    docker_socket: str,
    read_only: bool = True,
    allowed_roots: Iterable[os.PathLike[str] | str] = (),
    protected: Iterable[os.PathLike[str] | str] = (),
    homes: Iterable[str] | None = None,
) -> str:
    """Resolve ``source`` (symlinks, ``..``) and return it if it may be bind-mounted.

    ``protected`` adds the service's own host paths (its secrets and state directories);
    ``homes`` defaults to this host's (``system_homes``).
    """
    if not source.startswith("/"):
        raise VolumeForbiddenError(f"host path {source[:200]!r} is not absolute")
    shown = repr(source[:200])
    try:
        resolved = os.path.realpath(source)
        own = {docker_socket, os.path.realpath(docker_socket)}
        own |= {os.path.realpath(path) for path in protected}
        roots = [os.path.realpath(root) for root in allowed_roots]
    except OSError as exc:
        # /proc/<pid>/root and the like: a path that cannot be resolved is not mounted.
        raise VolumeForbiddenError(
            f"host path {shown} cannot be resolved ({exc.strerror})"
        ) from None
    home_list = system_homes() if homes is None else _real_homes(homes)
    reason = protected_reason(resolved, home_list, sorted(own))
    if reason is not None:
        raise VolumeForbiddenError(f"host path {shown} {reason}")
    _check_allow_list(resolved, shown, roots, read_only)
    try:
        info = os.stat(resolved)
    except FileNotFoundError:
        raise ValidationError(
            f"host path {shown} does not exist",
            resolution="Create the directory on the host first; it is never created for you.",
        ) from None
    except OSError as exc:
        raise VolumeForbiddenError(f"host path {shown} cannot be read ({exc.strerror})") from None
    _check_kind(info, shown)
    aliases = [*SYSTEM_TREES, *EXACT, *own, *home_list]
    if any(_same_inode(info, bad) for bad in aliases):
        raise VolumeForbiddenError(f"host path {shown} is another name for a protected path")
    return resolved


def _check_allow_list(resolved: str, shown: str, roots: list[str], read_only: bool) -> None:
    if not roots and not read_only:
        raise VolumeForbiddenError(
            f"host path {shown} cannot be mounted read-write: no host folder is open to writes",
            resolution=f"Mount it read-only (':ro'), or list its folder in {ALLOW_LIST_SETTING} "
            "to let agents write there.",
        )
    if roots and not any(within(resolved, root) for root in roots):
        raise VolumeForbiddenError(
            f"host path {shown} is outside the allowed host paths",
            resolution=f"Mount a directory under one of {ALLOW_LIST_SETTING}.",
        )


def _check_kind(info: os.stat_result, shown: str) -> None:
    mode = info.st_mode
    if stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        raise VolumeForbiddenError(f"host path {shown} is a socket or device file")
    if stat.S_ISREG(mode) and info.st_nlink > 1:
        # Its other names are unknown: one of them may lie under /etc.
        raise VolumeForbiddenError(f"host path {shown} is a file with other hard links")


def _same_inode(info: os.stat_result, path: str) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (info.st_dev, info.st_ino)
