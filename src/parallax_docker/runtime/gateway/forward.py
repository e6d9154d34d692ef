"""One model call through the gateway: check the agent's token, put the real key on the request,
forward it to the provider, pass the answer back as it arrives and count its usage.

A plain ASGI application (no framework between uvicorn and this): every call pays for each
layer, and the gateway's budget is about a millisecond. Refusals are answered in the provider's
own error format, so each CLI reports them as it would the provider's; they never echo the
token or a key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from parallax_docker.config import Settings
from parallax_docker.runtime.gateway.budgets import Overrun
from parallax_docker.runtime.gateway.keys import KeyStore
from parallax_docker.runtime.gateway.meter import Caller, Meter
from parallax_docker.runtime.gateway.providers import (
    BUDGET_STATUS,
    BY_NAME,
    DROPPED_HEADERS,
    key_headers,
    presented_token,
    refusal,
    upstream_of,
)
from parallax_docker.runtime.gateway.tokens import TokenBook
from parallax_docker.runtime.gateway.upstream import Answer, Origin, UpstreamPool
from parallax_docker.runtime.gateway.upstream_connection import UpstreamError
from parallax_docker.runtime.gateway.usage import UsageReader

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

# Headers of the provider's answer that belong to one hop only.
_HOP_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"trailer"}
)
_DROPPED = frozenset(name.encode() for name in DROPPED_HEADERS)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_JSON = [(b"content-type", b"application/json")]
# Who is calling, from the agent a token names and the address the call came from; None when
# that agent is not live or the call came from another container.
CallerOf = Callable[[str, str], Caller | None]
# The budget a caller has used up, if any (the gateway records and reports it).
Admit = Callable[[Caller], Overrun | None]


class Forwarder:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenBook,
        keys: KeyStore,
        meter: Meter,
        caller_of: CallerOf,
        admit: Admit,
        pool: UpstreamPool,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._keys = keys
        self._meter = meter
        self._caller_of = caller_of
        self._admit = admit
        self._pool = pool
        self._origins: dict[str, Origin] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        provider, _, _ = scope["path"][1:].partition("/")
        if provider not in BY_NAME:
            await _answer(
                send, 404, b'{"error": "no such provider at the gateway", "code": "NOT_FOUND"}'
            )
            return
        if scope["method"] not in _METHODS:
            await _answer(
                send, 405, b'{"error": "method not allowed", "code": "METHOD_NOT_ALLOWED"}'
            )
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        query = _query(scope["query_string"])
        token = presented_token(headers, {name: value for name, value, _ in query})
        agent_id = self._tokens.agent_of(token) if token else None
        client = scope.get("client")
        peer = client[0] if client else ""
        caller = self._caller_of(agent_id, peer) if agent_id is not None else None
        if caller is None:
            self._meter.refused("token")
            await _refuse(
                send,
                provider,
                401,
                "GATEWAY_TOKEN_INVALID",
                "this gateway token is not valid here (its agent has stopped, or the call "
                "came from another container)",
            )
            return
        key = self._keys.get(caller.agent_id, provider)
        if key is None:
            self._meter.refused("no-key", caller)
            await _refuse(
                send,
                provider,
                401,
                "GATEWAY_NO_KEY",
                f"the agent was spawned without a {provider} credential",
            )
            return
        over = self._admit(caller)
        if over is not None:
            self._meter.refused("budget", caller)
            await _refuse(
                send,
                provider,
                BUDGET_STATUS[provider],
                "BUDGET_EXCEEDED",
                f"the {over.scope}'s model budget is spent ({over.limit} {over.allowed:g}, "
                f"used {over.used:g}); raise it to go on",
            )
            return
        await self._forward(scope, receive, send, provider, key, caller, query)

    def _origin(self, provider: str) -> Origin:
        origin = self._origins.get(provider)
        if origin is None:
            origin = self._origins[provider] = Origin.of(upstream_of(provider, self._settings))
        return origin

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        provider: str,
        key: str,
        caller: Caller,
        query: list[tuple[str, str, bytes]],
    ) -> None:
        body = await _body(receive)
        origin = self._origin(provider)
        method: str = scope["method"]
        # The path as the agent sent it (still percent-encoded), after the provider's prefix.
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = (
            self._pool.target_prefix(origin)
            + origin.base_path.encode()
            + raw_path[len(provider) + 1 :]
        )
        # The agent's token may come as ?key= (Gemini's style); it never goes upstream.
        kept = b"&".join(raw for name, _, raw in query if name != "key")
        if kept:
            target += b"?" + kept
        lines = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", origin.host_header.encode()]
        for name, value in scope["headers"]:
            if name.lower() not in _DROPPED:
                lines += [b"\r\n", name, b": ", value]
        for name, value in key_headers(provider, key).items():
            lines += [b"\r\n", name.encode(), b": ", value.encode()]
        # Usage is read from the bytes as they pass: ask for them unencoded.
        lines += [b"\r\naccept-encoding: identity", self._pool.proxy_lines(origin)]
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            lines += [b"\r\ncontent-length: ", str(len(body)).encode()]
        lines.append(b"\r\n\r\n")
        try:
            answer = await self._pool.request(
                origin, b"".join(lines), body, headless=method == "HEAD"
            )
        except UpstreamError as exc:
            log.warning(
                "model provider unreachable: %s",
                exc,
                extra={"agent_id": caller.agent_id, "provider": provider},
            )
            self._meter.refused("upstream", caller)
            await _refuse(
                send, provider, 502, "GATEWAY_UPSTREAM_UNREACHABLE", "the provider did not answer"
            )
            return
        content_type = answer.header(b"content-type")
        streamed = "text/event-stream" in content_type
        reader = UsageReader(streamed)
        passed = [
            (name, value) for name, value in answer.headers if name.lower() not in _HOP_HEADERS
        ]
        if not streamed and "application/json" in content_type:
            # A whole answer goes back whole: one write, no stream to drive.
            try:
                whole = await answer.read()
            except UpstreamError:
                self._meter.refused("upstream", caller)
                await _refuse(
                    send,
                    provider,
                    502,
                    "GATEWAY_UPSTREAM_UNREACHABLE",
                    "the provider's answer broke off",
                )
                return
            finally:
                answer.close()
            reader.feed(whole)
            self._meter.record(caller, provider, reader.close())
            passed = [(n, v) for n, v in passed if n.lower() != b"content-length"]
            passed.append((b"content-length", str(len(whole)).encode()))
            await send({"type": "http.response.start", "status": answer.status, "headers": passed})
            await send({"type": "http.response.body", "body": whole})
            return
        try:
            await _relay(answer, receive, send, passed, reader)
        finally:
            # What passed is counted even when the answer broke off.
            self._meter.record(caller, provider, reader.close())


async def _relay(
    answer: Answer,
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]],
    reader: UsageReader,
) -> None:
    """Pass a streamed answer on as it arrives. An agent that hangs up ends the provider's
    answer too (its connection is dropped), so a model does not go on generating for nobody."""
    gone = asyncio.ensure_future(_disconnected(receive))

    def hung_up(task: asyncio.Future[None]) -> None:
        if not task.cancelled():
            answer.abort()

    gone.add_done_callback(hung_up)
    try:
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        async for chunk in answer.chunks():
            reader.feed(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except UpstreamError:
        if not gone.done():
            raise
    finally:
        gone.cancel()
        answer.close()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts)
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _query(raw: bytes) -> list[tuple[str, str, bytes]]:
    """Each item of a query string: its name and value decoded, and as it was sent."""
    items = []
    for part in raw.split(b"&"):
        if part:
            name, _, value = part.decode("latin-1").partition("=")
            items.append((unquote_plus(name), unquote_plus(value), part))
    return items


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, provider: str, status: int, kind: str, message: str) -> None:
    await _answer(send, status, refusal(provider, status, kind, message))
