"""Errors on the client side: the service's codes mapped back to the project's classes.

The service answers every failure with ``{error, code, resolution}``. The code is looked up in a
table built from ``errors.all_error_classes()``; nothing the server sends is ever imported or
evaluated. A code this client does not know becomes the base ``ParallaxError`` that keeps the
code in ``details["code"]`` (``code_of`` reads it). Failures that never reached the service
(refused connection, timeout, a body that is not the API's) have their own classes below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from parallax_docker.errors import ParallaxError, all_error_classes


class ClientError(ParallaxError):
    """The request did not get an answer from the service that the API defines."""

    code = "CLIENT_ERROR"
    http_status = 500
    default_resolution = "Check the service URL (--url or PARALLAX_URL) and that it is running."


class ServiceUnreachableError(ClientError):
    code = "SERVICE_UNREACHABLE"
    http_status = 503
    default_resolution = (
        "Start the service (parallax-docker serve) or point --url / PARALLAX_URL at it."
    )


class RequestTimeoutError(ClientError):
    code = "REQUEST_TIMEOUT"
    http_status = 504
    default_resolution = "Retry, or give the client a longer timeout."


class BadResponseError(ClientError):
    code = "BAD_RESPONSE"
    http_status = 502
    default_resolution = (
        "The URL does not seem to be a parallax-docker service; check --url or PARALLAX_URL."
    )


_ByCodeStatus = dict[tuple[str, int], type[ParallaxError]]
_ByCode = dict[str, type[ParallaxError]]


def _code_tables() -> tuple[_ByCodeStatus, _ByCode]:
    by_code_status: _ByCodeStatus = {}
    by_code: _ByCode = {}
    for cls in all_error_classes():
        if issubclass(cls, ClientError):
            continue
        by_code_status.setdefault((cls.code, cls.http_status), cls)
        # Base first: a code shared by a class and its subclass maps to the more general one.
        by_code.setdefault(cls.code, cls)
    return by_code_status, by_code


_BY_CODE_STATUS, _BY_CODE = _code_tables()


def error_class(code: str, status: int | None = None) -> type[ParallaxError] | None:
    """The class for ``code`` (and ``status`` where two classes share a code), or None."""
    if status is not None and (code, status) in _BY_CODE_STATUS:
        return _BY_CODE_STATUS[(code, status)]
    return _BY_CODE.get(code)


def error_from_body(body: Any, status: int) -> ParallaxError:
    """Turn an error body ``{error, code, resolution, details?}`` into an exception."""
    if not isinstance(body, Mapping) or not isinstance(body.get("code"), str):
        return BadResponseError(f"the service answered HTTP {status} without an error body")
    code: str = body["code"]
    message = str(body.get("error") or f"HTTP {status}")
    resolution = body.get("resolution")
    details = body.get("details")
    details = dict(details) if isinstance(details, Mapping) else {}
    cls = error_class(code, status)
    if cls is None:
        details = {**details, "code": code, "status": status}
        cls = ParallaxError
    return cls(
        message,
        resolution=resolution if isinstance(resolution, str) and resolution else None,
        details=details or None,
    )


def error_from_response(response: httpx.Response) -> ParallaxError:
    """The exception for a failed response whose body has been read."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return error_from_body(body, response.status_code)


def code_of(exc: ParallaxError) -> str:
    """The code the service sent: the class's, or the unknown one kept in details."""
    if type(exc) is ParallaxError and isinstance(exc.details.get("code"), str):
        return str(exc.details["code"])
    return exc.code


@contextmanager
def map_transport_errors(url: str) -> Iterator[None]:
    """Translate httpx's transport failures into the client's errors (chained)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RequestTimeoutError(f"no answer from {url} in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise ServiceUnreachableError(f"cannot reach the service at {url}: {exc}") from exc
    except httpx.InvalidURL as exc:
        raise ServiceUnreachableError(
            f"invalid service URL {url!r}", resolution="Give a URL such as http://127.0.0.1:3200."
        ) from exc
