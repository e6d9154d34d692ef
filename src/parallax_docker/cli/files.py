"""Working with what agents make: ``cp``, ``diff`` and ``open`` (docs/files.md).

``cp`` copies like ``docker cp``: ``AGENT:PATH`` on one side, a local path (or ``-``) on the
other; folders travel as tar streams, never whole in memory.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import threading
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from parallax_docker.cli import output
from parallax_docker.cli.connection import AgentArg, JsonOpt, connection_of, reporting
from parallax_docker.client import Client
from parallax_docker.errors import ValidationError
from parallax_docker.resources import NAME_RE

_CHUNK = 256 * 1024
_STATUS = {"added": "A", "modified": "M", "deleted": "D", "renamed": "R"}


def split_remote(text: str) -> tuple[str, str] | None:
    """``AGENT:PATH`` -> (agent, path); None for a local path (no colon before any slash)."""
    agent, sep, path = text.partition(":")
    if not sep or "/" in agent or not NAME_RE.match(agent):
        return None
    return agent, path


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of chunks (tarfile reads a download through it)."""

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


def tar_of(folder: Path) -> Iterator[bytes]:
    """A tar of ``folder``'s contents, made in a thread as it is read."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
                tar.add(folder, arcname=".")
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=write, name="parallax-cp-tar", daemon=True)
    thread.start()
    with os.fdopen(read_fd, "rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk
    thread.join()
    if failure:
        raise ValidationError(f"cannot read {folder}: {failure[0]}")


def _upload(client: Client, source: str, agent: str, path: str, tar: bool) -> str:
    if source == "-":
        stdin = sys.stdin.buffer
        return client.upload(agent, path, stdin, archive=tar).path
    local = Path(source)
    if local.is_dir():
        return client.upload(agent, path or ".", tar_of(local), archive=True).path
    if not local.is_file():
        raise ValidationError(f"{source} is not a file or folder on this machine")
    if path.endswith("/") or path in ("", "~"):
        path = path.rstrip("/") + "/" + local.name if path else local.name
    with local.open("rb") as data:
        return client.upload(agent, path, data, archive=tar).path


def _download(client: Client, agent: str, path: str, destination: str) -> str:
    with client.download(agent, path) as (found, chunks):
        if destination == "-":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return "-"
        target = Path(destination)
        if found.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
            reader = io.BufferedReader(_ChunkReader(chunks), _CHUNK)
            with tarfile.open(fileobj=reader, mode="r|") as archive:
                # The "data" filter refuses members that would land outside the folder.
                archive.extractall(target, filter="data")
            return str(target)
        if target.is_dir():
            target = target / Path(found.path).name
        partial = target.with_name(f".{target.name}.partial")
        with partial.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        partial.replace(target)
        return str(target)


def cp(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="AGENT:PATH, a local path, or - (stdin).")],
    destination: Annotated[str, typer.Argument(help="AGENT:PATH, a local path, or - (stdout).")],
    tar: Annotated[
        bool, typer.Option("--tar", help="The local file (or stdin) is a tar: unpack it there.")
    ] = False,
) -> None:
    """Copy files between an agent and this machine (folders as a whole, like docker cp).

    Agent paths are absolute (/workspace/..., ~/...) or relative to /workspace.
    """
    remote_source, remote_destination = split_remote(source), split_remote(destination)
    with reporting(), connection_of(ctx).client(timeout_s=300) as client:
        if remote_source is not None and remote_destination is None:
            done = _download(client, *remote_source, destination)
        elif remote_destination is not None and remote_source is None:
            done = _upload(client, source, *remote_destination, tar)
        else:
            raise ValidationError(
                "one side must be AGENT:PATH and the other a local path or -",
                resolution="parallax-docker cp ./src agent-1:/workspace/src",
            )
    if done != "-":
        typer.echo(done, err=True)


def diff(
    ctx: typer.Context,
    agent: AgentArg,
    name_only: Annotated[
        bool, typer.Option("--name-only", help="Only the changed paths, with A/M/D/R.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """What the agent changed in its workspace since it was spawned (a unified diff in git)."""
    with reporting(), connection_of(ctx).client() as client:
        found = client.diff(agent)
    if as_json:
        typer.echo(output.to_json(found))
        return
    if found.since is None:
        typer.echo("note: no snapshot was taken at spawn; everything counts as new", err=True)
    for commit in found.commits:
        typer.echo(f"commit {commit.sha[:12]} {commit.subject}", err=True)
    if found.diff is not None and not name_only:
        typer.echo(found.diff, nl=False)
    else:
        for changed in found.files:
            typer.echo(f"{_STATUS[changed.change]}\t{changed.path}")
    if found.truncated:
        typer.echo("note: the diff was cut at PARALLAX_MAX_DIFF_BYTES", err=True)


def open_port(
    ctx: typer.Context,
    agent: AgentArg,
    port: Annotated[int, typer.Argument(help="The port the agent's app listens on.")],
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open it in a web browser.")
    ] = True,
) -> None:
    """Open a preview of an app the agent serves on PORT (a link without the API token)."""
    with reporting(), connection_of(ctx).client() as client:
        url = client.open_preview(agent, port)
    typer.echo(url)
    # Only with a desktop: without one, webbrowser may start a text browser in this terminal.
    if browser and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        webbrowser.open(url)


def register(app: typer.Typer) -> None:
    app.command()(cp)
    app.command()(diff)
    app.command("open")(open_port)
