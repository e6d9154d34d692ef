"""docs/api.md is the page generated from the OpenAPI document the service serves."""

from __future__ import annotations

import difflib
from pathlib import Path

from parallax_docker.api.docs import REGENERATE, openapi_document, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_api_page_matches_the_served_openapi_document() -> None:
    expected = render(openapi_document())
    actual = DOC.read_text() if DOC.exists() else ""
    if actual != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    actual.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/api.md",
                    "generated",
                )
            )[:40]
        )
        raise AssertionError(
            f"docs/api.md is out of date; regenerate it with:\n  {REGENERATE}\n{diff}"
        )


def test_every_route_is_on_the_page() -> None:
    document = openapi_document()
    page = render(document)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### {method.upper()} {path}" in page


def test_render_is_deterministic_and_resolves_references() -> None:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1"},
        "paths": {
            "/b": {"get": {"summary": "B", "responses": {"200": {"description": "ok"}}}},
            "/a": {
                "post": {
                    "summary": "A",
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/x/Thing"}}}
                    },
                    "responses": {},
                }
            },
        },
        "components": {
            "schemas": {
                "Thing": {
                    "properties": {
                        "n": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 3},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["tags"],
                }
            }
        },
    }
    page = render(document)
    assert page == render(document)
    assert page.index("### POST /a") < page.index("### GET /b")
    assert "Request body (application/json): [Thing](#thing)" in page
    assert "| `n` | integer or null | no | (default `3`) |" in page
    assert "| `tags` | array of string | yes |  |" in page
