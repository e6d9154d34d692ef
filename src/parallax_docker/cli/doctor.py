"""``parallax-docker doctor``: is this machine ready to run agents? Each failed check says how
to fix it; the exit code is 1 when any check fails (warnings do not fail).

It talks to the engine through the Backend protocol (``backends.factory.create_deployment``), the
same way the service does, and reads the settings the service would read.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from parallax_docker.backends.base import Backend, EngineInfo
from parallax_docker.cli import output
from parallax_docker.cli.checks import Check
from parallax_docker.cli.token_check import TokenProbe, check_api_token, probe_without_token
from parallax_docker.config import Settings, load_settings
from parallax_docker.errors import ParallaxError
from parallax_docker.images import catalog

MIN_ENGINE = (20, 10)
_MARK = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red")}


def engine_version(version: str) -> tuple[int, int] | None:
    """``20.10.24+dfsg1`` -> (20, 10); None when it does not start with two numbers."""
    match = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_socket(path: str) -> Check:
    socket = Path(path)
    try:
        mode = socket.stat().st_mode
    except FileNotFoundError:
        return Check(
            "docker socket",
            "fail",
            f"{path} does not exist",
            "Start the engine (sudo bash scripts/setup.sh installs and starts one), or set "
            "DOCKER_SOCKET to its socket.",
        )
    except OSError as exc:
        return Check("docker socket", "fail", f"{path}: {exc.strerror}", "Check the path.")
    if not stat.S_ISSOCK(mode):
        return Check("docker socket", "fail", f"{path} is not a socket", "Set DOCKER_SOCKET.")
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(
            "docker socket",
            "fail",
            f"no permission to use {path}",
            "Run as root, or add this user to the socket's group (usually 'docker').",
        )
    return Check("docker socket", "ok", path)


def check_engine(info: EngineInfo | None, error: ParallaxError | None, socket: str) -> list[Check]:
    if info is None:
        reason = error.message if error is not None else "no answer"
        return [
            Check(
                "engine answers",
                "fail",
                reason,
                f"Start dockerd (or check its log); the socket is {socket}.",
            )
        ]
    checks = [Check("engine answers", "ok", f"Docker {info.version}, API {info.api_version}")]
    parsed = engine_version(info.version)
    if parsed is None or parsed < MIN_ENGINE:
        checks.append(
            Check(
                "engine version",
                "fail",
                f"{info.version} is older than 20.10" if parsed else f"unknown: {info.version}",
                "Install Docker Engine 20.10 or newer (Debian 12: apt-get install docker.io).",
            )
        )
    else:
        checks.append(Check("engine version", "ok", f"{info.version} >= 20.10"))
    checks.append(check_live_restore(info))
    if info.warnings:
        checks.append(
            Check(
                "engine warnings",
                "warn",
                "; ".join(info.warnings)[:300],
                "Limits the engine cannot enforce fail spawns; check cgroup and kernel support.",
            )
        )
    return checks


def check_live_restore(info: EngineInfo) -> Check:
    if info.live_restore:
        return Check("live restore", "ok", "on: agents keep running while the engine restarts")
    return Check(
        "live restore",
        "warn",
        "off: an engine restart stops every agent (autoRestart ones are started again)",
        'Add "live-restore": true to /etc/docker/daemon.json and reload dockerd (kill -HUP; no '
        "restart needed), or start it with --live-restore; scripts/setup.sh does when it starts "
        "the engine.",
    )


def check_memory(available: int | None, settings: Settings) -> Check:
    need = settings.default_memory_bytes
    if available is None:
        return Check("free memory", "warn", "unknown (no /proc/meminfo)")
    detail = (
        f"{output.human_bytes(available)} available; one agent takes "
        f"{output.human_bytes(need)} by default"
    )
    if available < need:
        return Check(
            "free memory",
            "fail",
            detail,
            "Free memory, or lower DEFAULT_MEMORY / give agents a smaller resources.memory.",
        )
    return Check("free memory", "ok", detail)


async def run_checks(
    settings: Settings,
    backend: Backend,
    memory: Callable[[], int | None] | None = None,
    token_probe: TokenProbe = probe_without_token,
) -> list[Check]:
    checks = [check_socket(settings.docker_socket)]
    info: EngineInfo | None = None
    error: ParallaxError | None = None
    try:
        info = await backend.ping()
    except ParallaxError as exc:
        error = exc
    checks.extend(check_engine(info, error, settings.docker_socket))
    if info is not None:
        checks.append(await _check_network(settings, backend))
        checks.append(await _check_images(settings, backend))
    checks.append(check_memory((memory or backend.available_memory)(), settings))
    checks.append(await check_api_token(settings, os.environ, token_probe))
    return checks


async def _check_network(settings: Settings, backend: Backend) -> Check:
    name = settings.docker_network
    try:
        exists = await backend.get_network(name) is not None
    except ParallaxError as exc:
        return Check("agent network", "fail", exc.message, exc.resolution)
    if exists:
        return Check("agent network", "ok", name)
    return Check(
        "agent network",
        "warn",
        f"{name} does not exist yet",
        "The service creates it when it starts (parallax-docker serve), or: docker network "
        f"create --label parallax.managed=true {name}",
    )


async def _check_images(settings: Settings, backend: Backend) -> Check:
    built: list[str] = []
    missing: list[str] = []
    for image_type in catalog.TYPES:
        try:
            image = await backend.get_image(catalog.image_name(settings, image_type))
        except ParallaxError as exc:
            return Check("agent images", "fail", exc.message, exc.resolution)
        (built if image is not None else missing).append(image_type)
    detail = f"built: {', '.join(built) or 'none'}"
    if not missing:
        return Check("agent images", "ok", detail)
    return Check(
        "agent images",
        "warn",
        f"{detail}; missing: {', '.join(missing)}",
        f"parallax-docker images build {' '.join(missing) if len(missing) < 4 else 'all'}",
    )


def checks_table(checks: list[Check]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("CHECK")
    table.add_column("RESULT")
    table.add_column("DETAIL")
    for check in checks:
        mark, style = _MARK[check.outcome]
        table.add_row(check.name, Text(mark, style=style), check.detail)
        if check.fix and check.outcome != "ok":
            table.add_row("", "", Text(f"fix: {check.fix}", style="cyan"))
    return table


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the Docker socket, engine version (>= 20.10), agent network, images, free memory,
    and whether the API asks for a token."""
    try:
        settings = load_settings()
    except ParallaxError as exc:
        typer.echo(output.error_text(exc), err=True)
        raise typer.Exit(output.EXIT_USAGE) from None
    checks = asyncio.run(_diagnose(settings))
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        output.console().print(checks_table(checks))
    if any(c.outcome == "fail" for c in checks):
        raise typer.Exit(output.EXIT_ERROR)


async def _diagnose(settings: Settings) -> list[Check]:
    from parallax_docker.backends.factory import create_deployment

    deployment = create_deployment(settings)
    try:
        return await run_checks(settings, deployment.backend)
    finally:
        await deployment.close()


def register(app: typer.Typer) -> None:
    app.command()(doctor)
