"""Previews: HTTP and WebSocket to a port an agent listens on (pure ASGI, two entrances).

- ``/agents/{id}/ports/{port}/...`` sits inside the token check: for clients that send the
  API token (curl, the Python client).
- ``/previews/<ticket>/...`` sits outside it: for a browser, which cannot put a token on a page
  load. The ticket (runtime/previews.py) opens that one port of that one agent, nothing else.
  The Host/Origin guard still checks the Host; it leaves the Origin to the ticket (the page is
  sandboxed, so its requests come from an opaque origin).

What a preview page served at the API's own origin must not do is act as the user: so it never
gets the token (the ticket is not the token), the browser's ``Authorization`` and ``Cookie``
headers are never forwarded to the agent and its ``Set-Cookie``, ``Clear-Site-Data`` and similar
origin-wide headers never reach the browser, and every answer carries
``Content-Security-Policy: sandbox ...``, which gives the page an opaque origin of its own: it
cannot read the dashboard's storage, and the guard refuses its calls to the API. docs/files.md
has the whole threat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from parallax_docker.api.preview_headers import (
    Target,
    answer_headers,
    forwarded_headers,
    header,
)
from parallax_docker.api.refusals import send_error
from parallax_docker.errors import (
    ParallaxError,
    PreviewUnreachableError,
    UploadTooLargeError,
)
from parallax_docker.runtime.runtime import Runtime

log = logging.getLogger(__name__)

_BEARER_PATH = re.compile(r"^/agents/(?P<agent>[^/]+)/ports/(?P<port>[0-9]{1,5})(?P<rest>/.*)?\Z")
_TICKET_PATH = re.compile(r"^/previews/(?P<ticket>[^/]+)(?P<rest>/.*)?\Z")
CONNECT_TIMEOUT_S = 10.0


def is_ticket_path(path: str) -> bool:
    """A path that carries its own capability (the guard checks its Host only)."""
    return path.startswith(("/previews/", "/api/previews/"))


class PreviewProxy:
    """The HTTP client both entrances share, and the proxying itself."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(CONNECT_TIMEOUT_S, read=None, write=60.0),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def target_of(self, scope: Scope, ticket: bool) -> Target | None:
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope["path"])
        match = (_TICKET_PATH if ticket else _BEARER_PATH).match(path)
        if match is None:
            return None
        rest = match["rest"] or ""
        prefix = path[: len(path) - len(rest)]
        if ticket:
            agent_id, port = self._runtime.previews.verify(match["ticket"])
        else:
            agent_id, port = match["agent"], int(match["port"])
        return Target(agent_id, port, prefix, rest, ticket)

    # -- HTTP --------------------------------------------------------------------------------

    async def http(self, scope: Scope, receive: Receive, send: Send, target: Target) -> None:
        if not target.rest:
            # The app's relative links need its root to end with a slash.
            query = scope.get("query_string") or b""
            location = target.prefix + "/" + (("?" + query.decode("latin-1")) if query else "")
            await _answer(send, 308, [(b"location", location.encode("latin-1"))])
            return
        method = str(scope["method"])
        if (
            target.ticket
            and method == "OPTIONS"
            and header(scope, b"access-control-request-method")
        ):
            await _answer_preflight(scope, send)
            return
        host, port = await self._runtime.previews.target(target.agent_id, target.port)
        url = f"http://{host}:{port}{target.rest}"
        query = (scope.get("query_string") or b"").decode("latin-1")
        if query:
            url += "?" + query
        has_body = header(scope, b"content-length") not in (None, b"0") or header(
            scope, b"transfer-encoding"
        )
        request = self.client().build_request(
            method,
            url,
            headers=forwarded_headers(scope, target),
            content=_body(receive, self._runtime.files.max_upload_bytes) if has_body else None,
        )
        try:
            response = await self.client().send(request, stream=True)
        except httpx.TransportError as exc:
            self._runtime.previews.forget(target.agent_id)
            raise _unreachable(target) from exc
        self._runtime.previews.opened(target.agent_id, target.port)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": answer_headers(response, target, host, port),
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    # -- WebSocket ---------------------------------------------------------------------------

    async def websocket(self, scope: Scope, receive: Receive, send: Send, target: Target) -> None:
        host, port = await self._runtime.previews.target(target.agent_id, target.port)
        url = f"ws://{host}:{port}{target.rest or '/'}"
        query = (scope.get("query_string") or b"").decode("latin-1")
        if query:
            url += "?" + query
        protocols = [str(p) for p in scope.get("subprotocols") or ()]
        try:
            upstream = await connect(
                url,
                subprotocols=protocols or None,  # type: ignore[arg-type]
                additional_headers=[
                    (name, value)
                    for name, value in forwarded_headers(scope, target)
                    if name not in ("origin", "content-length")
                ],
                open_timeout=CONNECT_TIMEOUT_S,
                max_size=None,
                ping_interval=None,
                compression=None,
                proxy=None,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            self._runtime.previews.forget(target.agent_id)
            raise _unreachable(target) from exc
        self._runtime.previews.opened(target.agent_id, target.port)
        try:
            first = await receive()
            if first["type"] != "websocket.connect":
                return
            accept: Message = {"type": "websocket.accept"}
            if upstream.subprotocol:
                accept["subprotocol"] = upstream.subprotocol
            await send(accept)
            await _pump(receive, send, upstream)
        finally:
            await upstream.close()


class PreviewEntrance:
    """One entrance (``ticket`` or with the token): serves its previews, passes every other
    request on."""

    def __init__(self, app: ASGIApp, proxy: PreviewProxy, *, ticket: bool) -> None:
        self.app = app
        self.proxy = proxy
        self.ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            target = await self.proxy.target_of(scope, self.ticket)
            if target is None:
                await self.app(scope, receive, send)
                return
            if scope["type"] == "http":
                await self.proxy.http(scope, receive, send, target)
            else:
                await self.proxy.websocket(scope, receive, send, target)
        except ParallaxError as exc:
            if scope["type"] == "http":
                await send_error(send, exc)
            else:
                await _refuse_websocket(receive, send, exc)


async def _refuse_websocket(receive: Receive, send: Send, error: ParallaxError) -> None:
    """Accept, say why in one text frame, close with 4000 + the HTTP status (as terminals do)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    body = {"type": "error", **error.to_body()}
    await send({"type": "websocket.send", "text": json.dumps(body)})
    await send({"type": "websocket.close", "code": 4000 + error.http_status, "reason": error.code})


def _unreachable(target: Target) -> PreviewUnreachableError:
    return PreviewUnreachableError(
        f"nothing answered on port {target.port} of agent {target.agent_id!r}"
    )


async def _body(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise UploadTooLargeError(f"the request body is larger than {limit} bytes")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _answer_preflight(scope: Scope, send: Send) -> None:
    asked_method = header(scope, b"access-control-request-method") or b"GET"
    asked_headers = header(scope, b"access-control-request-headers") or b""
    await _answer(
        send,
        204,
        [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-allow-methods", asked_method),
            (b"access-control-allow-headers", asked_headers),
            (b"access-control-max-age", b"600"),
        ],
    )


async def _pump(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    """Frames both ways until either side closes; the close code goes across."""

    async def from_browser() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(code=int(message.get("code") or 1000))
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    async def from_agent() -> None:
        try:
            async for frame in upstream:
                if isinstance(frame, str):
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
        except ConnectionClosed:
            pass
        code = upstream.close_code or 1000
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": code if code != 1006 else 1011})

    tasks = [asyncio.create_task(from_browser()), asyncio.create_task(from_agent())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results: list[Any] = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, ConnectionClosed):
                log.debug("preview websocket ended: %s", type(result).__name__)
