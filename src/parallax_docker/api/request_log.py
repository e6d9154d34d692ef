"""One log line per request, with a request id (pure ASGI middleware).

The id is the caller's ``X-Request-ID`` when it is short and plain, otherwise a new one; it is
sent back in the response's ``X-Request-ID`` header. The line holds the method, the path (never
the query string, whose values can be secrets), the status and the duration; no body and no
header value is ever logged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_MAX_PATH = 256

log = logging.getLogger("parallax_docker.access")


def request_id_from(headers: list[tuple[bytes, bytes]] | None) -> str:
    """The caller's id when it is sane, else a new random one."""
    for name, value in headers or ():
        if name.lower() == HEADER:
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


def printable_path(path: str) -> str:
    """The path as it may be logged: no control characters, bounded length."""
    shown = "".join(c if c.isprintable() else "?" for c in path)
    return shown if len(shown) <= _MAX_PATH else shown[:_MAX_PATH] + "..."


class RequestLogMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.logger = logger
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers"))
        started = self.clock()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                headers.append((HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            elif kind == "websocket.accept":
                status = 101
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                headers.append((HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            elif kind == "websocket.close" and status is None:
                status = 403
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if status is None:
                status = 500
            raise
        finally:
            self._log(scope, request_id, status, self.clock() - started)

    def _log(self, scope: Scope, request_id: str, status: int | None, seconds: float) -> None:
        method = "WS" if scope["type"] == "websocket" else str(scope.get("method", "?"))
        path = printable_path(str(scope.get("path", "")))
        duration_ms = round(seconds * 1000, 1)
        shown = status if status is not None else "-"
        self.logger.info(
            "%s %s -> %s in %.1f ms",
            method,
            path,
            shown,
            duration_ms,
            extra={
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
            },
        )
