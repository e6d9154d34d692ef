"""The one place where errors become HTTP responses: ``{error, code, resolution}``.

Validation messages name the field and the rule, never the value sent: a value may be a secret.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ParallaxError)
    async def _parallax(_: Request, exc: ParallaxError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("request failed: %s %s", exc.code, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        body = {
            "error": message,
            "code": code,
            "resolution": "See the OpenAPI document at /openapi.json for the routes.",
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Only the class name is logged: an exception's text can carry request values.
        log.error(
            "unhandled error: %s", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG)
        )
        return error_response(ParallaxError("internal error"))
