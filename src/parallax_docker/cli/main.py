"""The ``parallax-docker`` command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from parallax_docker.errors import ConfigError

# How long the API keeps an idle connection open (uvicorn's default is 5 s).
KEEP_ALIVE_S = 75

app = typer.Typer(
    help="Run CLI AI coding agents in hardened Docker containers.", no_args_is_help=True
)


def _register_subcommands() -> None:
    if any(group.name == "images" for group in app.registered_groups):
        return  # already done (tests build the app more than once)
    from parallax_docker.cli import agents, doctor, files, mcp_command
    from parallax_docker.cli.images import images_app
    from parallax_docker.cli.threads import threads_app

    app.add_typer(images_app, name="images", help="Build and list the agent images.")
    app.add_typer(threads_app, name="threads", help="Spawn, list, talk to and stop threads.")
    agents.register(app)
    files.register(app)
    mcp_command.register(app)
    doctor.register(app)


def build_app() -> typer.Typer:
    """The whole command with every subcommand registered (what ``main`` runs)."""
    _register_subcommands()
    return app


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (env HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env PORT).")] = None,
    human_logs: Annotated[
        bool, typer.Option("--human-logs", help="Plain text logs instead of JSON lines.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="'auto': use the token kept in the state directory, made on the first start "
            "(PARALLAX_API_TOKEN=auto does the same). The CLI and the client find it there.",
            show_default=False,
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Read the API token from this file (instead of env PARALLAX_API_TOKEN).",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Allow a non-loopback HOST without an API token (only behind another guard).",
        ),
    ] = False,
    stop_agents_on_exit: Annotated[
        bool,
        typer.Option(
            "--stop-agents-on-exit",
            help="Stop and remove every agent when the service stops (default: they keep "
            "running and a restarted service adopts them).",
        ),
    ] = False,
) -> None:
    """Start the HTTP + WebSocket API (port 3200 by default)."""
    import uvicorn

    from parallax_docker.api.app import create_app
    from parallax_docker.api.auth import redact_query_tokens_in_logs
    from parallax_docker.cli.exposure import log_exposure, token_overrides
    from parallax_docker.config import check_exposure, load_settings, read_token_file
    from parallax_docker.logging_setup import configure_logging

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if stop_agents_on_exit:
        overrides["stop_agents_on_exit"] = True
    try:
        if token_file is not None:
            overrides["api_token"] = read_token_file(token_file)
        settings = load_settings(None, **overrides)
        overrides.update(token_overrides(settings, token, os.environ))
        settings = load_settings(None, **overrides)
        check_exposure(settings, insecure=insecure)
    except ConfigError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}\nhint: {exc.resolution}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, json_lines=not human_logs)
    redact_query_tokens_in_logs()
    log_exposure(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # h11 hands the guard an absolute-form request target whole (http://host/path), so its
        # authority is checked like a Host header; httptools' parser (installed for the model
        # gateway's own server) keeps only the path.
        http="h11",
        log_config=None,
        access_log=False,
        lifespan="on",
        # Longer than clients keep an idle connection (httpx and uvicorn's default are both
        # 5 s, so a reuse at that moment met the close and lost the call; Node 4 s, Go 90 s,
        # urllib3 no limit): a call sent on a kept connection is then answered.
        timeout_keep_alive=KEEP_ALIVE_S,
    )


@app.command()
def version() -> None:
    """Print the version of parallax-docker."""
    from parallax_docker import __version__

    typer.echo(__version__)


def main() -> None:
    _register_subcommands()
    app(prog_name="parallax-docker")


if __name__ == "__main__":  # pragma: no cover
    main()
