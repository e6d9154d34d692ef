"""The thread routes' calls, without I/O (``Client`` and ``AsyncClient`` share them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from parallax_docker.client.calls import (
    Call,
    _multi,
    _problems,
    _reveal,
    _segment,
    stop_params,
)
from parallax_docker.errors import ValidationError
from parallax_docker.thread_models import SpawnThreadRequest, ThreadInputRequest


def spawn_thread(request: SpawnThreadRequest | None, fields: Mapping[str, Any]) -> Call:
    """Validated here, with the server's own model; fields in snake_case or camelCase."""
    if request is None:
        try:
            request = SpawnThreadRequest.model_validate(dict(fields))
        except PydanticValidationError as exc:
            raise ValidationError(f"invalid thread spawn: {_problems(exc)}") from None
    elif fields:
        raise TypeError("give either a SpawnThreadRequest or keyword fields, not both")
    dumped = request.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
    return Call("POST", "/threads", json=_reveal(dumped))


def list_threads(
    execution_id: str | None,
    role: str | None,
    status: str | Iterable[str] | None,
    agent_type: str | Iterable[str] | None,
) -> Call:
    params: list[tuple[str, str]] = []
    if execution_id is not None:
        params.append(("executionId", execution_id))
    if role is not None:
        params.append(("role", role))
    params += _multi("status", status) + _multi("agentType", agent_type)
    return Call("GET", "/threads", params=params)


def get_thread(thread_id: str) -> Call:
    return Call("GET", f"/threads/{_segment(thread_id)}")


def stop_thread(thread_id: str, force: bool, timeout_ms: int | None) -> Call:
    params = stop_params(force, timeout_ms)
    return Call("DELETE", f"/threads/{_segment(thread_id)}", params=params)


def send_to_thread(
    thread_id: str,
    message: str | None,
    raw: str | None,
    keys: Iterable[str] | None,
    metadata: Mapping[str, Any] | None,
) -> Call:
    try:
        request = ThreadInputRequest(
            message=message,
            raw=raw,
            keys=None if keys is None else list(keys),
            metadata=None if metadata is None else dict(metadata),
        )
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid thread input: {_problems(exc)}") from None
    body = request.model_dump(by_alias=True, exclude_none=True)
    return Call("POST", f"/threads/{_segment(thread_id)}/send", json=body)


def thread_events(thread_id: str, limit: int | None) -> Call:
    params = [] if limit is None else [("limit", str(int(limit)))]
    return Call("GET", f"/threads/{_segment(thread_id)}/events", params=params)
