"""The OpenAPI document says what the middleware and the error handler do to every route.

FastAPI describes each route's own answers. Three apply to every route without being declared on
it: 422 ``VALIDATION_ERROR`` (unknown query parameters, a body that does not parse), 403
``HOST_NOT_ALLOWED`` / ``ORIGIN_NOT_ALLOWED`` (the guard in api/guard.py, before routing) and,
with an API token, 401 ``UNAUTHORIZED`` plus the bearer security scheme. All use the one error
body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
_GUARDED = {
    "description": "The request's Host is not a name the service is served as, or a browser "
    "page of another origin sent it (HOST_NOT_ALLOWED, ORIGIN_NOT_ALLOWED)",
    "content": _ERROR_BODY,
}


def document_common_responses(app: FastAPI, *, bearer: bool) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        if bearer:
            components = schema.setdefault("components", {})
            components.setdefault("securitySchemes", {})["bearerAuth"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "The service's PARALLAX_API_TOKEN",
            }
            schema["security"] = [{"bearerAuth": []}]
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                responses.setdefault(
                    "422", {"description": "The request is not valid", "content": _ERROR_BODY}
                )
                responses.setdefault("403", _GUARDED)
                if bearer:
                    responses.setdefault(
                        "401",
                        {
                            "description": "The API token is missing or wrong",
                            "content": _ERROR_BODY,
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
