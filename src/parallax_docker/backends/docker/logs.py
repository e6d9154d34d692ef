"""A container's output as lines: what it printed so far, or followed as it prints."""

from __future__ import annotations

from collections.abc import AsyncIterator

from parallax_docker.backends.docker.engine import Engine
from parallax_docker.backends.docker.engine.streams import demux, read_frame
from parallax_docker.backends.docker.errors import engine_call


def log_params(tail: int | None, since: float | None, timestamps: bool) -> dict[str, str]:
    params = {
        "stdout": "1",
        "stderr": "1",
        "follow": "0",
        "timestamps": "1" if timestamps else "0",
        "tail": str(tail) if tail is not None else "all",
    }
    if since is not None:
        params["since"] = f"{since:.6f}"
    return params


def split_lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


async def read_logs(
    engine: Engine, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
) -> list[str]:
    async with engine_call("container", "logs", container_id[:12]):
        raw = await engine.containers.logs(container_id, log_params(tail, since, timestamps))
    return split_lines(demux(raw))


async def follow_logs(
    engine: Engine, container_id: str, *, tail: int | None, since: float | None, timestamps: bool
) -> AsyncIterator[str]:
    pending = b""
    params = log_params(tail, since, timestamps)
    async with (
        engine_call("container", "logs", container_id[:12]),
        engine.containers.follow_logs(container_id, params) as content,
    ):
        while (frame := await read_frame(content)) is not None:
            pending += frame[1]
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")
