"""``doctor``'s answer to "is the API protected?": asked of the service, else of the settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import httpx

from parallax_docker.cli.checks import Check
from parallax_docker.config import Settings
from parallax_docker.token_file import AUTO_TOKEN

TokenProbe = Callable[[str], Awaitable[int | None]]
_FIX = "Start the service with --token auto (or PARALLAX_API_TOKEN=auto): the CLI finds it."


async def probe_without_token(url: str) -> int | None:
    """The status of GET /agents without a token, or None when nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            return (await client.get(url + "/agents")).status_code
    except httpx.HTTPError:
        return None


def service_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


async def check_api_token(
    settings: Settings, environ: Mapping[str, str], probe: TokenProbe = probe_without_token
) -> Check:
    """Is the API protected? Asked of the running service first, else of the settings."""
    url = service_url(settings)
    status = await probe(url)
    if status == 401:
        return Check("api token", "ok", f"required: {url} refuses requests without it")
    if status is not None and 200 <= status < 300:
        return Check(
            "api token",
            "warn",
            f"not required: every local user and process can use {url}",
            _FIX,
        )
    if settings.api_token is not None or environ.get("PARALLAX_API_TOKEN") == AUTO_TOKEN:
        return Check("api token", "ok", f"configured ({url} does not answer now)")
    return Check("api token", "warn", "none configured", _FIX)
