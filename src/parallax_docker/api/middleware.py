"""ASGI middleware: the /api alias for every route, and the request body size limit."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parallax_docker.api.refusals import send_error
from parallax_docker.errors import PayloadTooLargeError

API_PREFIX = "/api"


class ApiPrefixMiddleware:
    """Serve ``/api/<route>`` as ``/<route>`` (the control plane calls the /api form)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                scope = dict(scope)
                scope["path"] = path[len(API_PREFIX) :] or "/"
                raw = scope.get("raw_path")
                if isinstance(raw, bytes) and raw.startswith(API_PREFIX.encode()):
                    scope["raw_path"] = raw[len(API_PREFIX) :] or b"/"
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, by header and while reading.

    Requests ``streamed(method, path)`` names (file uploads) pass untouched: their route streams
    the body on and bounds it itself.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        streamed: Callable[[str, str], bool] = lambda method, path: False,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.streamed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        # Read the whole body (it is small: max_bytes bounds it) before the app sees any of
        # it, so a chunked body over the limit is refused here with 413, not inside FastAPI.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    def _error(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"the request body is larger than {self.max_bytes} bytes")

    async def _refuse(self, send: Send) -> None:
        await send_error(send, self._error())
