"""What every command shares: the connection options, error reporting and completions.

Every command talks to the service only through ``parallax_docker.client``. Errors print
``error [CODE]: message`` and ``hint: resolution`` to stderr and exit with the code
``cli/output.py`` assigns to the API's error code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, NoReturn

import typer

from parallax_docker.cli import output
from parallax_docker.client import Client
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentStatus


def complete_status(incomplete: str) -> list[str]:
    return [s.value for s in AgentStatus if s.value.startswith(incomplete)]


@dataclass
class Connection:
    """The global ``--url`` and ``--token`` options."""

    url: str | None = None
    token: str | None = None

    def client(self, timeout_s: float = 120.0) -> Client:
        return Client(self.url, token=self.token, timeout_s=timeout_s)


def global_options(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="PARALLAX_URL",
            help="The service's URL (default http://127.0.0.1:3200).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="PARALLAX_API_TOKEN",
            help="API token sent as 'Authorization: Bearer' (prefer the environment variable).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run CLI AI coding agents in hardened Docker containers."""
    ctx.obj = Connection(url, token)


def connection_of(ctx: typer.Context) -> Connection:
    return _as_connection(ctx.obj)


def _as_connection(obj: object) -> Connection:
    return obj if isinstance(obj, Connection) else Connection()


def fail(exc: ParallaxError) -> NoReturn:
    typer.echo(output.error_text(exc), err=True)
    raise typer.Exit(output.exit_code_for(exc))


@contextmanager
def reporting() -> Iterator[None]:
    """Project errors -> message and exit code; Ctrl-C -> exit 130 without a traceback."""
    try:
        yield
    except ParallaxError as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(output.EXIT_INTERRUPTED) from None


def complete_agent(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of agent ids, asked of the service (quietly empty on error)."""
    root = ctx.find_root()
    # While completing, Click parses the options but runs no callback: read them here.
    connection = _as_connection(root.obj)
    if root.obj is None:
        connection = Connection(root.params.get("url"), root.params.get("token"))
    try:
        with connection.client(timeout_s=2) as client:
            agents = client.list()
    except (ParallaxError, OSError):
        return []
    return [agent.id for agent in agents if agent.id.startswith(incomplete)]


AgentArg = Annotated[
    str, typer.Argument(help="Agent id.", autocompletion=complete_agent, show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the API's form) instead.")]
