"""The gateway's egress proxy: HTTP ``CONNECT`` tunnels (TLS passes through untouched) and
plain ``http://`` requests, for agents whose egress is an allow-list.

It serves a second Unix socket behind the relays' port 3128. The relay's PROXY-protocol line
names the calling container; a host on that agent's allow-list is dialled (through the
operators' host map when it names one, else the host's resolver) and the bytes are piped both
ways; any other host gets 403 at once, with a plain-text reason, and is counted as a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from parallax_docker.egress import host_allowed
from parallax_docker.runtime.gateway.meter import Caller, Meter

log = logging.getLogger(__name__)

_MAX_HEAD = 16 * 1024
_CONNECT_TIMEOUT_S = 10.0
_PIPE_CHUNK = 64 * 1024
# The agent calling from an address, with its allow-list; None when no agent there is proxied.
PolicyOf = Callable[[str], tuple[Caller, tuple[str, ...]] | None]


def parse_target(method: str, target: str) -> tuple[str, int] | None:
    """(host, port) a proxy request asks for; None when it is not a proxy request."""
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            return None
        return host.strip("[]"), int(port)
    if target.startswith("http://"):
        split = urlsplit(target)
        return (split.hostname, split.port or 80) if split.hostname else None
    return None


def _reply(status: str, code: str, text: str) -> bytes:
    body = f"{code}: {text}\n".encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"X-Parallax-Code: {code}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class EgressProxy:
    def __init__(self, policy_of: PolicyOf, meter: Meter, hosts: Mapping[str, str]) -> None:
        self._policy_of = policy_of
        self._meter = meter
        self._hosts = {name.lower(): address for name, address in hosts.items()}
        self._server: asyncio.AbstractServer | None = None

    async def start(self, path: Path) -> None:
        """Serve on ``path`` (the caller has cleared it)."""
        self._server = await asyncio.start_unix_server(self._serve, path=str(path), limit=_MAX_HEAD)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._tunnel(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy_line = (await reader.readuntil(b"\r\n")).decode("ascii", "replace").split(" ")
        if len(proxy_line) != 6 or proxy_line[0] != "PROXY":
            return
        peer = proxy_line[2].removeprefix("::ffff:")
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, *_ = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(" "), "", ""]
        wanted = parse_target(method, target)
        policy = self._policy_of(peer)
        if wanted is None:
            writer.write(_reply("400 Bad Request", "EGRESS_BAD_REQUEST", "not a proxy request"))
            return
        host, port = wanted
        if policy is None or not host_allowed(host, policy[1]):
            self._meter.refused("egress", policy[0] if policy else None)
            log.info(
                "egress refused",
                extra={"agent_id": policy[0].agent_id if policy else None, "host": host[:253]},
            )
            writer.write(
                _reply(
                    "403 Forbidden",
                    "EGRESS_DENIED",
                    f"{host[:253]} is not on this agent's egress allow-list",
                )
            )
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self._hosts.get(host.lower(), host), port),
                _CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError):
            writer.write(_reply("502 Bad Gateway", "EGRESS_UNREACHABLE", f"{host} did not answer"))
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            upstream_writer.write(head)
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_PIPE_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
