"""What ``serve`` decides about the API token, and what it tells the operator about exposure."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from parallax_docker.config import Settings, is_loopback_host
from parallax_docker.errors import ConfigError
from parallax_docker.token_file import AUTO_TOKEN, ensure_token, token_path

log = logging.getLogger("parallax_docker.serve")
TOKEN_ENV = "PARALLAX_API_TOKEN"  # noqa: S105 - the variable's name


def wants_auto_token(cli_token: str | None, environ: Mapping[str, str]) -> bool:
    if cli_token is not None and cli_token != AUTO_TOKEN:
        # A token on the command line is visible to every local user (ps, /proc/*/cmdline).
        raise ConfigError(
            "--token takes only 'auto'",
            resolution="Give a token of your own through PARALLAX_API_TOKEN or --token-file.",
        )
    return cli_token == AUTO_TOKEN or environ.get(TOKEN_ENV) == AUTO_TOKEN


def token_overrides(
    settings: Settings, cli_token: str | None, environ: Mapping[str, str]
) -> dict[str, object]:
    """``{"api_token": ...}`` from the state directory's token file when 'auto' is asked for."""
    if not wants_auto_token(cli_token, environ):
        return {}
    if settings.api_token is not None:
        raise ConfigError(
            "the token is given twice: 'auto' and a token file",
            resolution="Use --token auto or --token-file, not both.",
        )
    return {"api_token": ensure_token(settings.state_dir)}


def exposure_notice(settings: Settings) -> str | None:
    """What an API without a token exposes, said once at start-up (None with a token)."""
    if settings.api_token is not None:
        return None
    where = f"{settings.host}:{settings.port}"
    if is_loopback_host(settings.host):
        who = f"every local user and process on this machine can use the API on {where}"
    else:
        who = f"anyone who can reach {where} can use the API (--insecure)"
    return (
        f"no API token: {who}: start agents, mount host folders, read their logs and open "
        "terminals in them. Web pages cannot: requests are served only for loopback Host names "
        "(and PARALLAX_ALLOWED_HOSTS) and refused from other origins (PARALLAX_ALLOWED_ORIGINS). "
        f"To require a token: serve --token auto (kept in {token_path(settings.state_dir)})."
    )


def log_exposure(settings: Settings) -> None:
    notice = exposure_notice(settings)
    if notice is None:
        log.info("API token required on every route and WebSocket")
    else:
        log.warning(notice)
