"""The API's calls, without I/O: what to send for each method and how to read the answer.

``Client`` and ``AsyncClient`` share these, so the two differ only in how they wait.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, SecretStr
from pydantic import ValidationError as PydanticValidationError

from parallax_docker.client.errors import BadResponseError, error_from_response
from parallax_docker.errors import ValidationError
from parallax_docker.models import SendRequest, SpawnRequest
from parallax_docker.token_file import AUTO_TOKEN, find_local_token

DEFAULT_URL = "http://127.0.0.1:3200"
URL_ENV = "PARALLAX_URL"
TOKEN_ENV = "PARALLAX_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
DEFAULT_TIMEOUT_S = 120.0

ModelT = TypeVar("ModelT", bound=BaseModel)


def resolve_url(url: str | None, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    chosen = url or env.get(URL_ENV) or DEFAULT_URL
    return chosen.rstrip("/")


def resolve_token(
    token: str | None, environ: Mapping[str, str] | None = None, url: str = DEFAULT_URL
) -> str | None:
    """The argument, else ``PARALLAX_API_TOKEN``, else the local service's token file.

    ``auto`` (what the service is told to make its own token with) means the file, which is
    read only for a service on a loopback ``url`` (token_file.py).
    """
    env = os.environ if environ is None else environ
    given = token or env.get(TOKEN_ENV) or None
    if given is not None and given != AUTO_TOKEN:
        return given
    return find_local_token(url, env)


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def websocket_url(base_url: str, path: str, params: Mapping[str, str] | None = None) -> str:
    """``http://host:port`` + ``/ws`` -> ``ws://host:port/ws`` (https -> wss)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = str(httpx.QueryParams(dict(params))) if params else ""
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, query, ""))


def events_url(base_url: str, agent_id: str | None, history: int) -> str:
    params: dict[str, str] = {}
    if agent_id is not None:
        params["agentId"] = agent_id
    if history:
        params["history"] = str(int(history))
    return websocket_url(base_url, "/ws/events" if agent_id is not None else "/ws", params)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None

    @property
    def query(self) -> httpx.QueryParams:
        return httpx.QueryParams(tuple(self.params))


def _reveal(value: Any) -> Any:
    """Secret values must go over the wire as they are (pydantic would mask them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {key: _reveal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(item) for item in value]
    return value


def spawn_body(request: SpawnRequest | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the spawn fields here, with the server's own model, and give the JSON body.

    Fields may be given in snake_case (``reports_to``) or as the API names them (``reportsTo``).
    """
    if request is None:
        try:
            request = SpawnRequest.model_validate(dict(fields))
        except PydanticValidationError as exc:
            raise ValidationError(f"invalid spawn request: {_problems(exc)}") from None
    elif fields:
        raise TypeError("give either a SpawnRequest or keyword fields, not both")
    dumped = request.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)
    body: dict[str, Any] = _reveal(dumped)
    return body


def _problems(exc: PydanticValidationError) -> str:
    """Field and rule of each problem; never the value (it can be a secret)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors()[:10]
    )


def spawn(request: SpawnRequest | None, fields: Mapping[str, Any]) -> Call:
    return Call("POST", "/agents", json=spawn_body(request, fields))


def _multi(name: str, values: str | Iterable[str] | None) -> list[tuple[str, str]]:
    if values is None:
        return []
    if isinstance(values, str):
        return [(name, values)]
    return [(name, str(value)) for value in values]


def list_agents(
    status: str | Iterable[str] | None,
    type: str | Iterable[str] | None,
    role: str | Iterable[str] | None,
) -> Call:
    params = _multi("status", status) + _multi("type", type) + _multi("role", role)
    return Call("GET", "/agents", params=params)


def get(agent_id: str) -> Call:
    return Call("GET", f"/agents/{_segment(agent_id)}")


def stop(agent_id: str, force: bool, timeout_ms: int | None) -> Call:
    return Call("DELETE", f"/agents/{_segment(agent_id)}", params=stop_params(force, timeout_ms))


def stop_params(force: bool, timeout_ms: int | None) -> list[tuple[str, str]]:
    """``force`` and the grace period, as DELETE of an agent or a thread takes them."""
    params = [("force", "true")] if force else []
    if timeout_ms is not None:
        params.append(("timeout", str(int(timeout_ms))))
    return params


def restart(agent_id: str) -> Call:
    return Call("POST", f"/agents/{_segment(agent_id)}/restart")


def logs(
    agent_id: str,
    tail: int | None,
    since: str | float | None,
    timestamps: bool,
    follow: bool = False,
) -> Call:
    params: list[tuple[str, str]] = []
    if tail is not None:
        params.append(("tail", str(int(tail))))
    if since is not None:
        params.append(("since", str(since)))
    if timestamps:
        params.append(("timestamps", "true"))
    if follow:
        params.append(("follow", "true"))
    return Call("GET", f"/agents/{_segment(agent_id)}/logs", params=params)


def metrics(agent_id: str) -> Call:
    return Call("GET", f"/agents/{_segment(agent_id)}/metrics")


def send(agent_id: str, message: str, expect_response: bool, timeout_ms: int | None) -> Call:
    try:
        request = SendRequest(
            message=message,
            expect_response=expect_response,
            timeout=None if timeout_ms is None else int(timeout_ms),
        )
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid send request: {_problems(exc)}") from None
    body = request.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
    return Call("POST", f"/agents/{_segment(agent_id)}/send", json=body)


def messages(agent_id: str, limit: int | None) -> Call:
    params = [] if limit is None else [("limit", str(int(limit)))]
    return Call("GET", f"/agents/{_segment(agent_id)}/messages", params=params)


def remove_execution(execution_id: str) -> Call:
    return Call("DELETE", f"/executions/{_segment(execution_id)}/resources")


def send_timeout(base_s: float, expect_response: bool, timeout_ms: int | None) -> httpx.Timeout:
    """How long to wait for ``send``: the service itself waits up to the turn's timeout for the
    agent's answer (its own default when none is given), so the client must not give up first."""
    if not expect_response:
        return httpx.Timeout(base_s)
    if timeout_ms is None:
        return httpx.Timeout(base_s, read=None)
    return httpx.Timeout(base_s, read=max(base_s, timeout_ms / 1000 + 10))


def health() -> Call:
    return Call("GET", "/health")


def gc(dry_run: bool) -> Call:
    return Call("POST", "/gc", params=[("dryRun", "true" if dry_run else "false")])


def _segment(value: str) -> str:
    """An id as one path segment: it can never climb to another route."""
    if not value or "/" in value or value in (".", ".."):
        raise ValidationError(f"{value!r} is not a valid id")
    return value


# -- answers ------------------------------------------------------------------------------------


def check(response: httpx.Response) -> httpx.Response:
    """Raise the mapped exception when the response is not a success (its body must be read)."""
    if response.is_success:
        return response
    raise error_from_response(response)


def json_of(response: httpx.Response) -> Any:
    check(response)
    try:
        return response.json()
    except ValueError:
        raise BadResponseError(
            f"the service answered {response.request.method} {response.request.url.path} "
            "with a body that is not JSON"
        ) from None


def model_of(response: httpx.Response, model: type[ModelT]) -> ModelT:
    data = json_of(response)
    try:
        return model.model_validate(data)
    except PydanticValidationError:
        raise BadResponseError(
            f"the service's answer to {response.request.url.path} does not match "
            f"{model.__name__}; are client and service the same version?"
        ) from None
