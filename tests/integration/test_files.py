"""Files in and out of real agents: round trips, streaming, limits (docs/files.md).

The agents are the project's echo image (Debian, GNU tar) and a busybox one, both read-only with
their workspace and home on tmpfs; one more has a named volume at /workspace.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX
from tests.support.engine import Engine
from tests.support.images import tools_image
from tests.support.server import ServiceProcess

MIB = 1024 * 1024


def make_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(
    name: str, data: bytes | None = None, *, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 1_700_000_000
    info.linkname = link
    return info, data


def members_of(archive: bytes) -> dict[str, tuple[str, bytes]]:
    """name -> (type, content or link target) of a tar's members."""
    found: dict[str, tuple[str, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as opened:
        for info in opened:
            name = info.name.removeprefix("./")
            if not name or name == ".":
                continue
            if info.isreg():
                extracted = opened.extractfile(info)
                assert extracted is not None
                found[name] = ("file", extracted.read())
            elif info.isdir():
                found[name] = ("dir", b"")
            elif info.issym():
                found[name] = ("symlink", info.linkname.encode())
    return found


@pytest.fixture
def agent(
    spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str]
) -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        fields.setdefault("resources", {"memory": "256m", "cpu": 0.5})
        return spawn(image=agent_image("echo"), **fields)

    return make


def put(
    api: httpx.Client, agent_id: str, path: str, body: Any, *, tar: bool = False
) -> httpx.Response:
    headers = {"content-type": "application/x-tar" if tar else "application/octet-stream"}
    return api.put(
        f"/agents/{agent_id}/files", params={"path": path}, content=body, headers=headers
    )


def get(api: httpx.Client, agent_id: str, path: str) -> httpx.Response:
    return api.get(f"/agents/{agent_id}/files", params={"path": path})


def listing(api: httpx.Client, agent_id: str, path: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"/agents/{agent_id}/files/list", params={"path": path})
    assert response.status_code == 200, response.text
    return {entry["name"]: entry for entry in response.json()["entries"]}


def test_text_file_round_trips_into_a_new_folder_with_its_listing(
    api: httpx.Client, agent: Callable[..., dict[str, Any]]
) -> None:
    handle = agent()
    text = "héllo, wörld\n$(not run) `nor this`\r\nlast line without newline"
    written = put(api, handle["id"], "notes/today/hello.txt", text.encode())
    assert written.status_code == 200, written.text
    assert written.json() == {
        "path": "/workspace/notes/today/hello.txt",
        "bytes": len(text.encode()),
        "archive": False,
    }
    read = get(api, handle["id"], "/workspace/notes/today/hello.txt")
    assert read.status_code == 200, read.text
    assert read.text == text
    assert read.headers["content-length"] == str(len(text.encode()))
    assert read.headers["x-parallax-kind"] == "file"
    entries = listing(api, handle["id"], "notes/today")
    assert entries["hello.txt"]["type"] == "file"
    assert entries["hello.txt"]["size"] == len(text.encode())
    assert entries["hello.txt"]["mode"] == "644"
    assert abs(entries["hello.txt"]["mtime"] - time.time()) < 120
    assert listing(api, handle["id"], "notes")["today"]["type"] == "dir"


def test_binary_file_round_trips_exactly_in_the_home_and_replaces_the_old_one(
    api: httpx.Client, agent: Callable[..., dict[str, Any]]
) -> None:
    handle = agent()
    payload = bytes(range(256)) * 4096 + os.urandom(MIB)
    assert put(api, handle["id"], "~/data.bin", b"old").status_code == 200
    written = put(api, handle["id"], "~/data.bin", payload)
    assert written.status_code == 200, written.text
    assert written.json()["path"] == "~/data.bin"
    read = get(api, handle["id"], "~/data.bin")
    assert read.status_code == 200, read.text
    assert hashlib.sha256(read.content).hexdigest() == hashlib.sha256(payload).hexdigest()
    home = api.get(f"/agents/{handle['id']}/files/list", params={"path": "~"}).json()
    assert home["path"] == "/home/agent"
    assert {e["name"] for e in home["entries"]} >= {"data.bin"}
    assert not [e for e in home["entries"] if e["name"].startswith(".parallax-upload-")]


def test_folder_round_trips_as_tar_with_links_and_empty_folders(
    api: httpx.Client, agent: Callable[..., dict[str, Any]]
) -> None:
    handle = agent()
    archive = make_tar(
        [
            member("src", kind=tarfile.DIRTYPE),
            member("src/app.py", b"print('hi')\n"),
            member("src/deep/er/data.bin", os.urandom(70_000)),
            member("empty", kind=tarfile.DIRTYPE),
            member("src/link", kind=tarfile.SYMTYPE, link="app.py"),
            member("README", b"# readme\n"),
        ]
    )
    written = put(api, handle["id"], "/workspace/proj", archive, tar=True)
    assert written.status_code == 200, written.text
    assert written.json() == {"path": "/workspace/proj", "bytes": len(archive), "archive": True}
    read = get(api, handle["id"], "/workspace/proj")
    assert read.status_code == 200, read.text
    assert read.headers["content-type"] == "application/x-tar"
    assert read.headers["x-parallax-kind"] == "dir"
    sent, got = members_of(archive), members_of(read.content)
    # Folders the archive only implied (src/deep) come back as members of their own.
    assert {name: got[name] for name in sent} == sent
    assert {name for name in got if name not in sent} == {"src/deep", "src/deep/er"}
    # A second archive merges into the folder: new files added, same names replaced.
    again = make_tar([member("src/app.py", b"print('v2')\n"), member("NEW", b"new")])
    assert put(api, handle["id"], "proj", again, tar=True).status_code == 200
    merged = members_of(get(api, handle["id"], "proj").content)
    assert merged["src/app.py"] == ("file", b"print('v2')\n")
    assert merged["NEW"] == ("file", b"new")
    assert merged["README"] == sent["README"]


def test_removing_a_file_a_link_and_a_folder(
    api: httpx.Client, agent: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    handle = agent()
    archive = make_tar(
        [
            member("d/a", b"a"),
            member("d/b/c", b"c"),
            member("keep", b"k"),
            member("link", kind=tarfile.SYMTYPE, link="keep"),
        ]
    )
    assert put(api, handle["id"], "w", archive, tar=True).status_code == 200
    base = f"/agents/{handle['id']}/files"
    refused = api.delete(base, params={"path": "w/d"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "DIRECTORY_NOT_EMPTY"
    assert api.delete(base, params={"path": "w/link"}).status_code == 204
    assert get(api, handle["id"], "w/keep").content == b"k"  # the link went, not its target
    assert api.delete(base, params={"path": "w/d", "recursive": "true"}).status_code == 204
    assert api.delete(base, params={"path": "w/keep"}).status_code == 204
    assert listing(api, handle["id"], "w") == {}
    gone = api.delete(base, params={"path": "w/keep"})
    assert gone.status_code == 404
    assert gone.json()["code"] == "FILE_NOT_FOUND"


def test_files_work_on_a_volume_mounted_workspace(
    api: httpx.Client, agent: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    volume = f"{PREFIX}-files-{uuid.uuid4().hex[:6]}"
    handle = agent(volumes=[f"{volume}:/workspace"])
    payload = os.urandom(3 * MIB)
    assert put(api, handle["id"], "on-volume.bin", payload).status_code == 200
    assert get(api, handle["id"], "on-volume.bin").content == payload
    code, output = engine.exec(handle["containerName"], "df", "-P", "/workspace")
    assert code == 0
    assert "tmpfs" not in output.splitlines()[-1]


def test_files_work_in_a_busybox_agent(
    api: httpx.Client, spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    handle = spawn(image=tools_image())
    payload = os.urandom(200_000)
    archive = make_tar(
        [member("x/y.bin", payload), member("x/z", kind=tarfile.SYMTYPE, link="y.bin")]
    )
    assert put(api, handle["id"], "bb", archive, tar=True).status_code == 200, "tar"
    assert get(api, handle["id"], "bb/x/y.bin").content == payload
    got = members_of(get(api, handle["id"], "bb").content)
    assert {name: got[name] for name in members_of(archive)} == members_of(archive)
    entries = listing(api, handle["id"], "bb/x")
    assert entries["z"]["type"] == "symlink"
    assert entries["z"]["target"] == "y.bin"
    assert (
        api.delete(
            f"/agents/{handle['id']}/files", params={"path": "bb", "recursive": "true"}
        ).status_code
        == 204
    )


class RssWatch:
    """The service's resident memory, sampled every few milliseconds in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = self.rss()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def big_tar(files: int, file_bytes: int, digests: dict[str, str]) -> Iterator[bytes]:
    """A tar of ``files`` pseudo-random files made as it is sent (never whole in memory)."""
    rng = random.Random(19)
    for index in range(files):
        info = tarfile.TarInfo(f"part-{index}.bin")
        info.size = file_bytes
        info.mtime = 1_700_000_000
        yield info.tobuf(format=tarfile.GNU_FORMAT)
        digest = hashlib.sha256()
        left = file_bytes
        while left:
            chunk = rng.randbytes(min(MIB, left))
            digest.update(chunk)
            left -= len(chunk)
            yield chunk
        yield b"\0" * (-file_bytes % 512)
        digests[info.name] = digest.hexdigest()
    yield b"\0" * 1024


class StreamReader(io.RawIOBase):
    """A file-like view of a response's byte iterator, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


@pytest.mark.slow
def test_a_200_mib_archive_streams_in_and_out_without_the_service_holding_it(
    api: httpx.Client, agent: Callable[..., dict[str, Any]], service: ServiceProcess
) -> None:
    handle = agent(resources={"memory": "768m", "cpu": 1})
    sent: dict[str, str] = {}
    with RssWatch(service.pid) as upload:
        written = put(api, handle["id"], "big", big_tar(4, 50 * MIB, sent), tar=True)
    assert written.status_code == 200, written.text
    assert written.json()["bytes"] > 200 * MIB
    got: dict[str, str] = {}
    with (
        RssWatch(service.pid) as download,
        api.stream("GET", f"/agents/{handle['id']}/files", params={"path": "big"}) as response,
    ):
        assert response.status_code == 200
        reader = io.BufferedReader(StreamReader(response.iter_raw(256 * 1024)), 1024 * 1024)
        with tarfile.open(fileobj=reader, mode="r|") as archive:
            for info in archive:
                if info.isreg():
                    extracted = archive.extractfile(info)
                    assert extracted is not None
                    digest = hashlib.sha256()
                    while block := extracted.read(MIB):
                        digest.update(block)
                    got[info.name.removeprefix("./")] = digest.hexdigest()
    assert got == sent
    # 200 MiB went each way; the service grew by a few buffers at most.
    assert upload.peak - upload.baseline < 48 * MIB, (upload.baseline, upload.peak)
    assert download.peak - download.baseline < 48 * MIB, (download.baseline, download.peak)
