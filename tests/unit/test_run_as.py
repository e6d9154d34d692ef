"""Who an agent runs as (run_as.py): root never, unless allowed."""

from __future__ import annotations

import pytest

from parallax_docker.run_as import NONROOT, RunAs, plan_user, resolve, settle

PASSWD = (
    "root:x:0:0::/root:/bin/sh\nagent:x:1000:1000::/home/agent:/bin/sh\n"
    "toor:x:0:0::/:/bin/sh\nsvc:x:1001:0::/:/bin/sh\n"
)
GROUP = "root:x:0:\nagent:x:1000:\nstaff:x:50:\n"


@pytest.mark.parametrize("user", [None, "", "root", "0", "0:0", "root:root", "0:1000", "00"])
def test_root_images_run_as_the_unprivileged_user(user: str | None) -> None:
    assert plan_user(user, allow_root=False) == NONROOT


@pytest.mark.parametrize(
    ("user", "expected"),
    [("1000:0", "1000:65532"), ("1000:root", "1000:65532"), ("1000:1000", "1000:1000")],
)
def test_numeric_users_keep_their_uid_and_lose_group_zero(user: str, expected: str) -> None:
    assert plan_user(user, allow_root=False).user == expected


@pytest.mark.parametrize("user", ["agent", "node", "1000", "agent:staff"])
def test_names_and_bare_uids_are_looked_up_in_the_image(user: str) -> None:
    assert plan_user(user, allow_root=False).needs_lookup


def test_allow_root_leaves_the_images_user() -> None:
    assert plan_user(None, allow_root=True) == RunAs(None, 0, None)


@pytest.mark.parametrize(
    ("user", "passwd", "group", "expected"),
    [
        ("agent", PASSWD, GROUP, None),
        ("toor", PASSWD, GROUP, "65532:65532"),
        ("svc", PASSWD, GROUP, "1001:65532"),
        ("agent", PASSWD, "root:x:0:agent\nagent:x:1000:\n", "1000:1000"),
        ("nobody-here", PASSWD, GROUP, "65532:65532"),
        ("1000", PASSWD, GROUP, None),
        ("4242", PASSWD, GROUP, "4242:65532"),
        ("agent:staff", PASSWD, GROUP, "1000:50"),
        ("agent", None, None, "65532:65532"),
    ],
)
def test_resolve_never_keeps_root(
    user: str, passwd: str | None, group: str | None, expected: str | None
) -> None:
    assert resolve(user, passwd, group).user == expected


@pytest.mark.parametrize(
    ("user", "passwd", "expected"),
    [
        ("agent", PASSWD, None),  # the guess holds: start as created
        ("agent", "agent:x:1001:1001::/:/bin/sh\n", "1001:1001"),  # another uid: make again
        ("node", "node:x:1000:1000::/:/bin/sh\n", "1000:1000"),  # no guess: make again
        ("toor", PASSWD, "65532:65532"),
    ],
)
def test_settle_keeps_a_container_only_when_the_planned_ids_hold(
    user: str, passwd: str, expected: str | None
) -> None:
    final = settle(plan_user(user, allow_root=False), passwd, GROUP)
    assert (final.user if final is not None else None) == expected
