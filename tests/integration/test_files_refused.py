"""Every path and upload the files API refuses, on a real agent, with nothing changed.

The agent makes the hostile things itself (links out, a FIFO) through a plain exec, as a
compromised agent would, before the caller asks for them.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.conftest import agent_body
from tests.integration.test_files import get, listing, make_tar, member, put
from tests.support.engine import Engine

SECRET = "s3cr3t-value-never-shown-0123456789"


@pytest.fixture(scope="module")
def hostile(
    api: httpx.Client, engine: Engine, agent_image: Callable[[str], str]
) -> Iterator[dict[str, Any]]:
    response = api.post(
        "/agents",
        json=agent_body(
            image=agent_image("echo"),
            env={"MY_SECRET": SECRET},
            resources={"memory": "256m", "cpu": 0.5},
        ),
    )
    assert response.status_code == 201, response.text
    handle: dict[str, Any] = response.json()
    script = (
        "set -e; cd /workspace; mkdir -p real; echo inside > real/file; "
        "ln -s /run/parallax/env secret-link; ln -s /etc out; ln -s /tmp tmp-link; "
        "ln -s real/file good-link; ln -s /nowhere dangling; mkfifo pipe; "
        "echo outside > /tmp/outside.txt"
    )
    code, output = engine.exec(handle["containerName"], "sh", "-c", script, user="agent")
    assert code == 0, output
    yield handle
    engine.remove_container(handle["containerName"])


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["error"] and body["resolution"]
    assert SECRET not in response.text
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/run/parallax/env",
        "/proc/self/environ",
        "/dev/null",
        "/",
        "/tmp/outside.txt",
        "/workspace/secret-link",
        "/workspace/out/passwd",
        "/workspace/tmp-link/outside.txt",
        "/home",
    ],
)
def test_reads_outside_the_workspace_and_home_are_refused(
    api: httpx.Client, hostile: dict[str, Any], path: str
) -> None:
    refused(get(api, hostile["id"], path), 403, "PATH_FORBIDDEN")


@pytest.mark.parametrize("path", ["../etc/passwd", "/workspace/../etc", "real/../../x", "~/.."])
def test_paths_that_climb_are_refused_before_the_agent_is_asked(
    api: httpx.Client, hostile: dict[str, Any], path: str
) -> None:
    refused(get(api, hostile["id"], path), 403, "PATH_FORBIDDEN")
    refused(put(api, hostile["id"], path, b"x"), 403, "PATH_FORBIDDEN")


def test_a_fifo_is_refused_at_once_instead_of_blocking(
    api: httpx.Client, hostile: dict[str, Any]
) -> None:
    started = time.monotonic()
    refused(get(api, hostile["id"], "pipe"), 403, "FILE_TYPE_FORBIDDEN")
    assert time.monotonic() - started < 10


def test_links_inside_are_followed_and_dangling_ones_refused(
    api: httpx.Client, hostile: dict[str, Any]
) -> None:
    assert get(api, hostile["id"], "good-link").text == "inside\n"
    refused(get(api, hostile["id"], "dangling"), 403, "PATH_FORBIDDEN")
    refused(get(api, hostile["id"], "missing"), 404, "FILE_NOT_FOUND")


def test_writes_through_links_out_are_refused_and_create_nothing(
    api: httpx.Client, engine: Engine, hostile: dict[str, Any]
) -> None:
    for path in ("tmp-link/new.txt", "tmp-link/sub/new.txt", "/tmp/new.txt", "out/x"):
        refused(put(api, hostile["id"], path, b"x"), 403, "PATH_FORBIDDEN")
    archive = make_tar([member("new.txt", b"x")])
    refused(put(api, hostile["id"], "tmp-link", archive, tar=True), 403, "PATH_FORBIDDEN")
    code, output = engine.exec(hostile["containerName"], "ls", "-A", "/tmp")
    assert code == 0
    assert output.split() == ["outside.txt"]


def test_removing_a_root_or_through_a_link_out_is_refused(
    api: httpx.Client, engine: Engine, hostile: dict[str, Any]
) -> None:
    base = f"/agents/{hostile['id']}/files"
    for path in ("/workspace", "~", "", "tmp-link/outside.txt", "/tmp/outside.txt"):
        refused(api.delete(base, params={"path": path, "recursive": "true"}), 403, "PATH_FORBIDDEN")
    code, _ = engine.exec(hostile["containerName"], "test", "-f", "/tmp/outside.txt")
    assert code == 0
    # Removing the link itself is allowed: its target stays.
    assert api.delete(base, params={"path": "secret-link"}).status_code == 204


def test_malformed_paths_are_422(api: httpx.Client, hostile: dict[str, Any]) -> None:
    refused(get(api, hostile["id"], "a\0b"), 422, "VALIDATION_ERROR")
    refused(get(api, hostile["id"], "x" * 5000), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (member("../escaped.txt", b"x"), "climbs"),
        (member("/abs.txt", b"x"), "absolute"),
        (member("evil", kind=tarfile.SYMTYPE, link="/etc"), "absolute path"),
        (member("deep/evil", kind=tarfile.SYMTYPE, link="../../.."), "out of the archive"),
        (member("hard", kind=tarfile.LNKTYPE, link="../x"), "climbs"),
        (member("dev", kind=tarfile.CHRTYPE), "device"),
        (member("fifo", kind=tarfile.FIFOTYPE), "device or FIFO"),
    ],
)
def test_bad_archive_members_are_refused_and_nothing_of_the_archive_is_kept(
    api: httpx.Client,
    engine: Engine,
    hostile: dict[str, Any],
    bad: tuple[tarfile.TarInfo, bytes | None],
    why: str,
) -> None:
    # A good member first: it must not stay behind either.
    archive = make_tar([member("first.txt", b"good"), bad, member("last.txt", b"good")])
    body = refused(put(api, hostile["id"], "unpacked", archive, tar=True), 422, "BAD_ARCHIVE")
    assert why in body["error"]
    # Not even the folder it was to be unpacked in was made, nor anything staged left.
    refused(get(api, hostile["id"], "unpacked"), 404, "FILE_NOT_FOUND")
    assert not [n for n in listing(api, hostile["id"], "/workspace") if n.startswith(".parallax")]
    _, output = engine.exec(hostile["containerName"], "ls", "-A", "/", "/home/agent")
    assert "escaped.txt" not in output and "abs.txt" not in output


def test_garbage_and_cut_archives_are_refused(api: httpx.Client, hostile: dict[str, Any]) -> None:
    refused(put(api, hostile["id"], "g", b"not a tar" * 200, tar=True), 422, "BAD_ARCHIVE")
    refused(put(api, hostile["id"], "g", b"", tar=True), 422, "BAD_ARCHIVE")
    whole = make_tar([member("big.bin", b"z" * 100_000)])
    body = refused(put(api, hostile["id"], "g", whole[:50_000], tar=True), 422, "BAD_ARCHIVE")
    assert "ends inside" in body["error"]
    refused(get(api, hostile["id"], "g"), 404, "FILE_NOT_FOUND")


def test_a_file_never_replaces_a_folder(api: httpx.Client, hostile: dict[str, Any]) -> None:
    refused(put(api, hostile["id"], "real", b"x"), 409, "PATH_CONFLICT")
    archive = make_tar([member("real", b"x")])
    refused(put(api, hostile["id"], "/workspace", archive, tar=True), 409, "PATH_CONFLICT")
    assert get(api, hostile["id"], "real/file").text == "inside\n"
    assert not [n for n in listing(api, hostile["id"], "/workspace") if n.startswith(".parallax")]


def test_limits_refuse_large_uploads_and_downloads_with_codes(
    start_service: Callable[..., Any], agent_image: Callable[[str], str], engine: Engine
) -> None:
    service = start_service(
        {"PARALLAX_MAX_UPLOAD_BYTES": "65536", "PARALLAX_MAX_DOWNLOAD_BYTES": "100000"}
    )
    with httpx.Client(base_url=service.url, timeout=60) as client:
        made = client.post(
            "/agents", json=agent_body(image=agent_image("echo"), resources={"memory": "128m"})
        )
        assert made.status_code == 201, made.text
        handle = made.json()
        try:
            agent_id = handle["id"]
            # By Content-Length, before anything is read.
            refused(put(client, agent_id, "big", b"x" * 70_000), 413, "UPLOAD_TOO_LARGE")

            def chunked() -> Iterator[bytes]:
                for _ in range(20):
                    yield b"y" * 8192

            # Without a length: counted as it streams, and nothing is kept.
            refused(put(client, agent_id, "big", chunked()), 413, "UPLOAD_TOO_LARGE")
            assert listing(client, agent_id, "/workspace") == {}
            assert put(client, agent_id, "ok.bin", b"z" * 60_000).status_code == 200
            assert put(client, agent_id, "ok2.bin", b"z" * 60_000).status_code == 200
            assert get(client, agent_id, "ok.bin").status_code == 200
            refused(get(client, agent_id, "/workspace"), 422, "DOWNLOAD_TOO_LARGE")
        finally:
            engine.remove_container(handle["containerName"])
