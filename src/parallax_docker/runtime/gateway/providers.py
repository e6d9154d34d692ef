"""The model providers the gateway serves: where each lives, how its key is presented, which
agent settings point a CLI at it, and how it says "no" (pure data and pure functions).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from parallax_docker.config import Settings
from parallax_docker.egress import GATEWAY_ALIAS, GATEWAY_PORT

AGENT_URL = f"http://{GATEWAY_ALIAS}:{GATEWAY_PORT}"


@dataclass(frozen=True)
class Provider:
    name: str
    # The credential variables whose value is this provider's key (held at the gateway).
    key_names: tuple[str, ...]
    # Each CLI's base-URL variable, and the path after the gateway's provider prefix.
    base_url_names: tuple[str, ...]
    base_url_suffix: str = ""

    def agent_base_url(self) -> str:
        return f"{AGENT_URL}/{self.name}{self.base_url_suffix}"


PROVIDERS: tuple[Provider, ...] = (
    Provider("anthropic", ("ANTHROPIC_API_KEY",), ("ANTHROPIC_BASE_URL",)),
    # codex reads OPENAI_BASE_URL, aider (litellm) OPENAI_API_BASE.
    Provider("openai", ("OPENAI_API_KEY",), ("OPENAI_BASE_URL", "OPENAI_API_BASE"), "/v1"),
    Provider("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), ("GOOGLE_GEMINI_BASE_URL",)),
)
BY_NAME: dict[str, Provider] = {provider.name: provider for provider in PROVIDERS}


def upstream_of(provider: str, settings: Settings) -> str:
    urls = {
        "anthropic": settings.gateway_anthropic_url,
        "openai": settings.gateway_openai_url,
        "gemini": settings.gateway_gemini_url,
    }
    return urls[provider].rstrip("/")


def split_keys(env: Mapping[str, str]) -> dict[str, str]:
    """The provider keys in an agent's secret env: {provider: key} (the first name wins)."""
    keys: dict[str, str] = {}
    for provider in PROVIDERS:
        for name in provider.key_names:
            if name in env and provider.name not in keys:
                keys[provider.name] = env[name]
    return keys


def agent_env(env: Mapping[str, str], providers: set[str], token: str) -> dict[str, str]:
    """``env`` with every key of ``providers`` replaced by ``token`` and each CLI pointed at
    the gateway (a base URL the request set is overridden: the upstream is the gateway's)."""
    out = dict(env)
    for provider in PROVIDERS:
        if provider.name not in providers:
            continue
        for name in provider.key_names:
            if name in out:
                out[name] = token
        for name in provider.base_url_names:
            out[name] = provider.agent_base_url()
    return out


def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token an agent's CLI sent where it would send its key."""
    for header in ("x-api-key", "x-goog-api-key"):
        if headers.get(header):
            return headers[header]
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return query.get("key")


def key_headers(provider: str, key: str) -> dict[str, str]:
    """The header the provider expects its key in."""
    if provider == "anthropic":
        return {"x-api-key": key}
    if provider == "gemini":
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


# Headers that carry the agent's token (never forwarded) or belong to one hop only.
DROPPED_HEADERS = frozenset(
    {
        "x-api-key",
        "x-goog-api-key",
        "authorization",
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "accept-encoding",
    }
)


# How each provider says a budget is spent: a status its CLIs do not retry (aider, through
# litellm, retries an OpenAI 403 for a minute; a 400 it gives up on at once).
BUDGET_STATUS = {"anthropic": 400, "openai": 400, "gemini": 403}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}
_GEMINI_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    429: "RESOURCE_EXHAUSTED",
}
_OPENAI_CODES = {
    "BUDGET_EXCEEDED": "insufficient_quota",
    "GATEWAY_TOKEN_INVALID": "invalid_api_key",
}


def refusal(provider: str, status: int, kind: str, message: str) -> bytes:
    """An error body in the provider's own format, so each CLI reports it as it would the
    provider's (``kind`` is the project's code, e.g. BUDGET_EXCEEDED, and leads the message)."""
    text = f"{kind}: {message}"
    if provider == "anthropic":
        body: object = {
            "type": "error",
            "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": text},
        }
    elif provider == "gemini":
        gstatus = _GEMINI_STATUSES.get(status, "UNAVAILABLE")
        body = {"error": {"code": status, "message": text, "status": gstatus}}
    else:
        code = _OPENAI_CODES.get(kind, "server_error" if status >= 500 else "invalid_request")
        body = {"error": {"message": text, "type": code, "param": None, "code": code}}
    return json.dumps(body).encode()
