"""docs/api.md, generated from the service's OpenAPI document.

    python -m parallax_docker.api.docs > docs/api.md

A unit test regenerates the page in memory and compares it with the file, so the page always
describes the routes the service really serves. The app is built with default settings and
is never started: nothing here reaches the Docker engine.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

REGENERATE = "python -m parallax_docker.api.docs > docs/api.md"
_METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    from parallax_docker.api.app import create_app
    from parallax_docker.config import load_settings

    document: dict[str, Any] = create_app(load_settings({})).openapi()
    return document


def render(document: Mapping[str, Any]) -> str:
    """The Markdown page for an OpenAPI document (deterministic: same input, same text)."""
    info = document.get("info", {})
    lines = [
        f"# {info.get('title', 'API')} — HTTP API",
        "",
        f"<!-- Generated from the OpenAPI document by `{REGENERATE}`; do not edit. -->",
        "",
        f"Version {info.get('version', '?')}, OpenAPI {document.get('openapi', '?')}. The service "
        "serves the same document at `/openapi.json` (browsable at `/docs`).",
        "",
    ]
    description = str(info.get("description", "")).strip()
    if description:
        lines += [description, ""]
    operations = list(_operations(document.get("paths", {})))
    lines += ["## Routes", "", "| Method | Path | Summary |", "|---|---|---|"]
    for method, path, operation in operations:
        anchor = _anchor(f"{method} {path}")
        lines.append(f"| {method.upper()} | [`{path}`](#{anchor}) | {_cell(_summary(operation))} |")
    lines.append("")
    for method, path, operation in operations:
        lines += _operation(method, path, operation)
    schemas = document.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name in sorted(schemas):
            lines += _schema(name, schemas[name])
    return "\n".join(lines).rstrip() + "\n"


def _operations(paths: Mapping[str, Any]) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    for path in sorted(paths):
        for method in _METHODS:
            if method in paths[path]:
                yield method, path, paths[path][method]


def _summary(operation: Mapping[str, Any]) -> str:
    return str(operation.get("summary") or operation.get("operationId") or "")


def _anchor(text: str) -> str:
    kept = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _operation(method: str, path: str, operation: Mapping[str, Any]) -> list[str]:
    lines = [f"### {method.upper()} {path}", ""]
    summary = _summary(operation)
    if summary:
        lines += [summary + ("" if summary.endswith(".") else "."), ""]
    description = str(operation.get("description", "")).strip()
    if description and description != summary:
        lines += [description, ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| Parameter | In | Type | Required | Description |", "|---|---|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            default = schema.get("default")
            text = str(parameter.get("description") or schema.get("description") or "")
            if default is not None:
                text = (text + f" (default `{_literal(default)}`)").strip()
            lines.append(
                f"| `{parameter['name']}` | {parameter.get('in', '')} | {_type(schema)} | "
                f"{'yes' if parameter.get('required') else 'no'} | {_cell(text)} |"
            )
        lines.append("")
    body = operation.get("requestBody")
    if body:
        for media, content in sorted(body.get("content", {}).items()):
            lines += [f"Request body ({media}): {_type(content.get('schema', {}))}", ""]
    responses = operation.get("responses", {})
    if responses:
        lines += ["| Status | Description | Body |", "|---|---|---|"]
        for status in sorted(responses):
            response = responses[status]
            bodies = [
                f"{_type(content['schema'])} ({media})" if content.get("schema") else media
                for media, content in sorted(response.get("content", {}).items())
            ]
            lines.append(
                f"| {status} | {_cell(str(response.get('description', '')))} | "
                f"{_cell(', '.join(bodies)) or '-'} |"
            )
        lines.append("")
    return lines


def _schema(name: str, schema: Mapping[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    description = str(schema.get("description", "")).strip()
    if description:
        lines += [" ".join(description.split()), ""]
    if "enum" in schema:
        lines += ["One of: " + ", ".join(f"`{_literal(v)}`" for v in schema["enum"]) + ".", ""]
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        lines += ["| Field | Type | Required | Description |", "|---|---|---|---|"]
        for field, spec in properties.items():
            text = str(spec.get("description") or "")
            if "default" in spec and spec["default"] not in (None, [], {}):
                text = (text + f" (default `{_literal(spec['default'])}`)").strip()
            lines.append(
                f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
                f"{_cell(text)} |"
            )
        lines.append("")
    return lines


def _type(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            parts = [_type(option) for option in schema[key]]
            return " or ".join(dict.fromkeys(parts))
    if "enum" in schema:
        return " \\| ".join(f"`{_literal(v)}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping) and extra:
            return f"object of {_type(extra)}"
        return "object"
    if kind == "null":
        return "null"
    if isinstance(kind, str):
        return kind
    return "any"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def main() -> None:
    sys.stdout.write(render(openapi_document()))


if __name__ == "__main__":  # pragma: no cover
    main()
