"""Unknown query parameters are refused, as unknown body fields are (422 VALIDATION_ERROR).

A mistyped parameter (``?forse=true``) would otherwise be ignored without a word. Each route's
known parameters come from its own declaration, so a new route needs nothing extra.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from parallax_docker.errors import ValidationError

_KNOWN: dict[int, frozenset[str]] = {}


def _query_names(dependant: Any) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for child in dependant.dependencies:
        names |= _query_names(child)
    return names


def known_query_parameters(route: Any) -> frozenset[str] | None:
    """The query parameter names ``route`` declares; None for a route FastAPI did not build."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    key = id(route)
    if key not in _KNOWN:
        _KNOWN[key] = frozenset(_query_names(dependant))
    return _KNOWN[key]


async def reject_unknown_query(request: HTTPConnection) -> None:
    # HTTPConnection, not Request: WebSocket routes get this dependency too.
    known = known_query_parameters(request.scope.get("route"))
    if known is None:
        return
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise ValidationError(
            f"unknown query parameter(s): {shown}",
            resolution="See /openapi.json for the parameters each route takes.",
        )
