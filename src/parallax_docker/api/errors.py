"""The one place where errors become HTTP responses: ``{error, code, resolution}``.

Validation messages name the field and the rule, never the value sent: a value may be a secret.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parallax_docker.errors import ParallaxError, ValidationError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def error_response(exc: ParallaxError) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.http_status)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def validation_error(exc: RequestValidationError) -> ValidationError:
    problems = []
    for err in exc.errors()[:10]:
        problems.append(f"{_field(tuple(err.get('loc', ())))}: {err.get('msg', 'invalid')}")
    return ValidationError(
        "invalid request: " + "; ".join(problems),
        details={"fields": [_field(tuple(e.get("loc", ()))) for e in exc.errors()[:50]]},
    )


def _count(request: Request, code: str) -> None:
    telemetry = getattr(request.app.state, "telemetry", None)
    if telemetry is not None:
        telemetry.error(code, "api")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ParallaxError)
    async def _parallax(request: Request, exc: ParallaxError) -> JSONResponse:
        _count(request, exc.code)
        if exc.http_status >= 500:
            log.warning("request failed: %s %s", exc.code, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        _count(request, ValidationError.code)
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (bytes that are not UTF-8 JSON): a malformed
            # request like any other, so the same 422 every route documents.
            _count(request, ValidationError.code)
            return error_response(ValidationError("invalid request: the body could not be parsed"))
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        _count(request, code)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        body = {
            "error": message,
            "code": code,
            "resolution": "See the OpenAPI document at /openapi.json for the routes.",
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _count(request, ParallaxError.code)
        # Only the class name is logged: an exception's text can carry request values. At debug
        # level the frames follow, without the exception's message.
        log.error("unhandled error: %s", type(exc).__name__)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("unhandled error at:\n%s", "".join(traceback.format_tb(exc.__traceback__)))
        return error_response(ParallaxError("internal error"))


class ContainErrorsMiddleware:
    """The outermost ASGI layer: no exception of a request ever leaves the app.

    Starlette's ServerErrorMiddleware sends the 500 (through the handler above, which logs only
    the class name) and then re-raises, so that the server logs the exception with its text and
    traceback; an exception's text can carry request values, secrets among them. This layer
    takes it instead and logs its class name only. WebSocket exceptions, which no handler sees,
    end the connection with 1011.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept", "websocket.close"):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("request ended by an unhandled error: %s", type(exc).__name__)
            if started:
                return
            with contextlib.suppress(Exception):
                if scope["type"] == "http":
                    await error_response(ParallaxError("internal error"))(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1011})
