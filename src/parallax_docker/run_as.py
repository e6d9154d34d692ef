"""Who an agent's processes run as: never uid 0 nor gid 0 unless ``PARALLAX_ALLOW_ROOT``.

Dropped capabilities do not stop a process from writing files its uid owns, and uid 0 owns the
host's system files: an agent running as root with a writable host folder could plant a
root-owned program on the host. So an image whose user is root (no ``USER``, ``root``, ``0``,
``0:0``, ``root:root``, or a name that is uid 0 in the image's ``/etc/passwd``) runs as the
unprivileged ``NONROOT_UID:NONROOT_GID``; a group 0 (``1000:0``, or a user whose primary or
extra group is gid 0) is the host's root group and is replaced by ``NONROOT_GID``.

The container's user is given to the engine as numbers wherever the numbers are known, so the
image's ``/etc/group`` cannot add groups. A name can only be told from the image's own files:
``needs_lookup`` users are created as named, their ``/etc/passwd`` and ``/etc/group`` read from
the created container, and ``resolve`` says whether that user is acceptable as it is or the
container must be made again with numbers (runtime/run_as_user.py). ``docker exec`` (turns,
terminals, probes) runs as the container's user: the service never names another.
"""

from __future__ import annotations

from dataclasses import dataclass

# The conventional unprivileged "nonroot" uid of distroless images: no host account has it.
NONROOT_UID = 65532
NONROOT_GID = 65532
PROJECT_USER = "agent"
PROJECT_UID = 1000


@dataclass(frozen=True)
class RunAs:
    """``user`` for the container's Config.User (None: leave the image's); the known ids."""

    user: str | None
    uid: int | None
    gid: int | None
    needs_lookup: bool = False

    @property
    def known_uid(self) -> int | None:
        """The uid files may be given to before the container exists (None: any user's)."""
        return None if self.needs_lookup else self.uid

    def numeric(self) -> RunAs:
        """The same ids given as numbers (no group can come from the image's /etc/group)."""
        return RunAs(f"{self.uid}:{self.gid}", self.uid, self.gid)


NONROOT = RunAs(f"{NONROOT_UID}:{NONROOT_GID}", NONROOT_UID, NONROOT_GID)


def plan_user(image_user: str | None, *, allow_root: bool) -> RunAs:
    """What to run an image with ``USER image_user`` as, from the name alone."""
    name, _, group = (image_user or "").partition(":")
    if allow_root:
        uid = 0 if name in ("", "root") else (int(name) if name.isdigit() else None)
        return RunAs(None, uid, None)
    if name in ("", "root") or (name.isdigit() and int(name) == 0):
        return NONROOT
    if name.isdigit() and group.isdigit():
        gid = int(group)
        return RunAs(f"{int(name)}:{gid or NONROOT_GID}", int(name), gid or NONROOT_GID)
    if name.isdigit() and group == "root":
        return RunAs(f"{int(name)}:{NONROOT_GID}", int(name), NONROOT_GID)
    # A name, or a uid whose group comes from the image's files (the engine's default is 0).
    # The project's own user name is guessed as the project images have it, to be checked.
    if name == PROJECT_USER and not group:
        return RunAs(image_user, PROJECT_UID, PROJECT_UID, needs_lookup=True)
    return RunAs(image_user, int(name) if name.isdigit() else None, None, needs_lookup=True)


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int


def _accounts(passwd: str) -> list[_Account]:
    found = []
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
            found.append(_Account(fields[0], int(fields[2]), int(fields[3])))
    return found


def _groups(group: str) -> list[tuple[str, int, list[str]]]:
    found = []
    for line in group.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit():
            members = [m for m in fields[3].split(",") if m]
            found.append((fields[0], int(fields[2]), members))
    return found


def settle(planned: RunAs, passwd: str | None, group: str | None) -> RunAs | None:
    """None when a ``needs_lookup`` container may start as created; else what to make it as."""
    assert planned.user is not None
    final = resolve(planned.user, passwd, group)
    guessed = planned.uid == final.uid and planned.gid in (None, final.gid)
    if final.user is None and guessed:
        return None
    return final if final.user is not None else final.numeric()


def resolve(image_user: str, passwd: str | None, group: str | None) -> RunAs:
    """The numbers of a ``needs_lookup`` user from the image's files, root never kept.

    ``user`` is None when the engine may go on running the image's user as named (a known
    account, not uid 0, no group 0 among its groups); otherwise the ``uid:gid`` to create with.
    """
    name, _, group_name = image_user.partition(":")
    groups = _groups(group or "")
    account = next(
        (a for a in _accounts(passwd or "") if (str(a.uid) if name.isdigit() else a.name) == name),
        None,
    )
    if name.isdigit():
        uid = int(name)
    elif account is not None:
        uid = account.uid
    else:
        return NONROOT  # the engine could not start it by that name either
    if uid == 0:
        return NONROOT
    if group_name:
        gid = next((g for n, g, _ in groups if group_name in (n, str(g))), NONROOT_GID)
    else:
        # The engine's default for a uid that is not in /etc/passwd is group 0.
        gid = account.gid if account is not None else 0
    in_root_group = account is not None and any(
        g == 0 and account.name in members for _, g, members in groups
    )
    if account is None or group_name or gid == 0 or in_root_group:
        # Numbers only: no group from the image's /etc/group, and never group 0.
        gid = gid or NONROOT_GID
        return RunAs(f"{uid}:{gid}", uid, gid)
    return RunAs(None, uid, gid)
