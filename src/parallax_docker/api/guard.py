"""The Host and Origin guard (pure ASGI): the first check every request and WebSocket meets.

It sits inside the request log and outside everything else (the /api alias, the token check,
the body limit, routing), so a refused request is logged but never authenticated, read or
routed. What it allows is decided by ``origins.OriginPolicy`` (see there for why).

- A refused HTTP request gets 403 ``HOST_NOT_ALLOWED`` or ``ORIGIN_NOT_ALLOWED`` in the usual
  ``{error, code, resolution}`` shape, with no CORS header.
- A refused WebSocket is accepted and closed at once with 1008 and the code as the reason, like
  the token check's refusal (api/auth.py): no route runs and no frame is sent.
- Paths that carry their own capability (``host_only``: preview links, api/previews.py) get the
  Host check only: their pages are sandboxed, so their requests come from an opaque origin.
- A CORS preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin is
  answered here (the token check would refuse it: browsers never send credentials on a
  preflight); an allowed origin's requests get ``Access-Control-Allow-Origin`` with that origin,
  never ``*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parallax_docker.api.refusals import close_websocket, send_error
from parallax_docker.errors import HostNotAllowedError, OriginNotAllowedError, ParallaxError
from parallax_docker.origins import OriginPolicy, Verdict, absolute_form_path

log = logging.getLogger(__name__)

ALLOW_METHODS = b"GET, HEAD, POST, DELETE, OPTIONS"
ALLOW_HEADERS = b"authorization, content-type, x-request-id"
EXPOSE_HEADERS = b"x-request-id"
PREFLIGHT_MAX_AGE_S = b"600"
# Every answer: not to be framed by another page (clickjacking the /docs page), and its content
# type taken as sent.
_ALWAYS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff")]


def _refusal(verdict: Verdict) -> ParallaxError:
    if verdict is Verdict.BAD_HOST:
        return HostNotAllowedError("the request's Host is not a name this service is served as")
    return OriginNotAllowedError("requests from web pages of other origins are refused")


class HostOriginGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        policy: OriginPolicy,
        on_refusal: Callable[[str], None] = lambda code: None,
        host_only: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.app = app
        self.policy = policy
        self.on_refusal = on_refusal
        self.host_only = host_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        method = str(scope.get("method", "GET")) if scope["type"] == "http" else "GET"
        target = str(scope.get("path", "/"))
        verdict = self.policy.judge(method=method, headers=headers, target=target)
        if verdict is not Verdict.BAD_HOST and self.host_only(target):
            verdict = Verdict.SERVE
        if verdict in (Verdict.BAD_HOST, Verdict.BAD_ORIGIN):
            self.on_refusal(verdict.value)
            log.info("refused: %s", verdict.value, extra={"code": verdict.value})
            if scope["type"] == "http":
                await send_error(send, _refusal(verdict), [(b"vary", b"Origin"), *_ALWAYS])
            else:
                await close_websocket(receive, send, verdict.value)
            return
        origin = (headers.get("origin") or [""])[0].encode("latin-1")
        if verdict is Verdict.PREFLIGHT:
            await _answer_preflight(send, origin, headers)
            return
        path = absolute_form_path(target)
        if path is not None:
            # An absolute-form target whose authority passed the Host check: route its path.
            scope = {**scope, "path": path, "raw_path": path.encode("latin-1")}
        cors = origin if verdict is Verdict.SERVE_CORS else None
        await self.app(scope, receive, _with_headers(send, cors))


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers") or ():
        found.setdefault(bytes(name).decode("latin-1").lower(), []).append(
            bytes(value).decode("latin-1")
        )
    return found


def _with_headers(send: Send, cors_origin: bytes | None) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] in ("http.response.start", "websocket.accept"):
            present = {name.lower() for name, _ in message.get("headers", ())}
            extra = (
                [(name, value) for name, value in _ALWAYS if name not in present]
                if message["type"] == "http.response.start"
                else []
            )
            extra.append((b"vary", b"Origin"))
            if cors_origin:
                extra.append((b"access-control-allow-origin", cors_origin))
                extra.append((b"access-control-expose-headers", EXPOSE_HEADERS))
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return sending


async def _answer_preflight(send: Send, origin: bytes, headers: dict[str, list[str]]) -> None:
    response = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", ALLOW_METHODS),
        (b"access-control-allow-headers", ALLOW_HEADERS),
        (b"access-control-max-age", PREFLIGHT_MAX_AGE_S),
        (b"vary", b"Origin"),
        (b"content-length", b"0"),
        *_ALWAYS,
    ]
    asked = headers.get("access-control-request-private-network") or []
    if any(value.strip().lower() == "true" for value in asked):
        # Chrome asks before a public page may reach a loopback address; an allowed origin may.
        response.append((b"access-control-allow-private-network", b"true"))
    await send({"type": "http.response.start", "status": 204, "headers": response})
    await send({"type": "http.response.body", "body": b""})
