"""The agent commands: spawn, ls, get, logs, metrics, stop, restart, gc (and, from cli/talk.py,
send, messages, events). Shared options and error reporting live in cli/connection.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.live import Live

from parallax_docker.cli import output, talk
from parallax_docker.cli.connection import (
    AgentArg,
    JsonOpt,
    complete_agent,
    complete_status,
    connection_of,
    global_options,
    reporting,
)
from parallax_docker.cli.spawn_command import spawn
from parallax_docker.client import Client
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentStatus, AgentType, MetricsResponse

# -- reads ----------------------------------------------------------------------------------------


def ls(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only agents in this status (repeat): "
            + ", ".join(s.value for s in AgentStatus)
            + ".",
            autocompletion=complete_status,
        ),
    ] = None,
    agent_type: Annotated[
        list[AgentType] | None,
        typer.Option("--type", "-t", help="Only agents of this type (repeat)."),
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Only agents with this role (repeat).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the ids.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List agents as a table."""
    with reporting(), connection_of(ctx).client() as client:
        agents = client.list(
            status=status or None,
            type=[t.value for t in agent_type or ()] or None,
            role=role or None,
        )
    if as_json:
        typer.echo(output.to_json({"agents": agents, "count": len(agents)}))
    elif quiet:
        for agent in agents:
            typer.echo(agent.id)
    elif not agents:
        typer.echo("no agents")
    else:
        output.console().print(output.agents_table(agents))


def get(ctx: typer.Context, agent: AgentArg, as_json: JsonOpt = False) -> None:
    """Show one agent: status, container, limits, env keys (never values)."""
    with reporting(), connection_of(ctx).client() as client:
        handle = client.get(agent)
    if as_json:
        typer.echo(output.to_json(handle))
    else:
        output.console().print(output.agent_detail(handle))


def logs(
    ctx: typer.Context,
    agent: AgentArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the agent stops.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", help="Only the last N lines.", min=0)
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines after this time: Unix seconds or ISO 8601."),
    ] = None,
    timestamps: Annotated[
        bool, typer.Option("--timestamps", help="Prefix each line with its time.")
    ] = False,
) -> None:
    """Print an agent's output."""
    with reporting(), connection_of(ctx).client() as client:
        if follow:
            for line in client.stream_logs(agent, tail=tail, since=since, timestamps=timestamps):
                typer.echo(line)
        else:
            for line in client.logs(agent, tail=tail, since=since, timestamps=timestamps):
                typer.echo(line)


def metrics(
    ctx: typer.Context,
    agents: Annotated[
        list[str] | None,
        typer.Argument(
            help="Agent ids (default: every running agent).",
            autocompletion=complete_agent,
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep the table up to date until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between updates with --watch.", min=0.1)
    ] = 2.0,
    count: Annotated[
        int | None,
        typer.Option("--count", help="With --watch: stop after this many updates.", min=1),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show CPU, memory, PIDs, network and uptime of agents (a live table with --watch)."""
    with reporting(), connection_of(ctx).client() as client:
        sample = _sampler(client, agents or [])
        if as_json and not watch:
            typer.echo(output.to_json(sample()[0]))
            return
        if not watch:
            samples, names = sample()
            output.console().print(output.metrics_table(samples, names))
            return
        updates = 0
        with Live(
            output.metrics_table(*sample()), console=output.console(), auto_refresh=False
        ) as live:
            updates = 1
            while count is None or updates < count:
                time.sleep(interval)
                live.update(output.metrics_table(*sample()), refresh=True)
                updates += 1


def _sampler(
    client: Client, wanted: list[str]
) -> Callable[[], tuple[list[MetricsResponse], dict[str, str]]]:
    def sample() -> tuple[list[MetricsResponse], dict[str, str]]:
        if wanted:
            targets = [(agent, agent) for agent in wanted]
        else:
            running = client.list(status=["ready", "busy", "starting"])
            targets = [(a.id, a.name) for a in running]
        samples: list[MetricsResponse] = []
        names: dict[str, str] = {}
        for ref, name in targets:
            try:
                metric = client.metrics(ref)
            except ParallaxError:
                if wanted:
                    raise
                continue  # stopped between the list and the sample
            samples.append(metric)
            names[metric.agent_id] = name
        return samples, names

    return sample


# -- writes ---------------------------------------------------------------------------------------


def stop(
    ctx: typer.Context,
    agents: Annotated[
        list[str],
        typer.Argument(help="Agent ids.", autocompletion=complete_agent, show_default=False),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Kill at once (SIGKILL) instead of SIGTERM first.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Seconds between SIGTERM and SIGKILL.", min=0),
    ] = None,
) -> None:
    """Stop agents and remove their containers."""
    timeout_ms = None if timeout is None else int(timeout * 1000)
    with reporting(), connection_of(ctx).client() as client:
        for agent in agents:
            client.stop(agent, force=force, timeout_ms=timeout_ms)
            typer.echo(f"stopped {agent}")


def restart(ctx: typer.Context, agent: AgentArg, as_json: JsonOpt = False) -> None:
    """Restart an agent's container and wait until it is ready again."""
    with reporting(), connection_of(ctx).client() as client:
        handle = client.restart(agent)
    if as_json:
        typer.echo(output.to_json(handle))
    else:
        typer.echo(f"{handle.id} {handle.status.value}")


def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would be removed.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find and remove what agents left behind: containers, networks, volumes."""
    with reporting(), connection_of(ctx).client() as client:
        report = client.gc(dry_run=dry_run)
    if as_json:
        typer.echo(output.to_json(report))
        return
    verb = "would remove" if dry_run else "removed"
    found = False
    for kind, items in (
        ("container", report.containers),
        ("network", report.networks),
        ("volume", report.volumes),
    ):
        for item in items:
            found = True
            typer.echo(f"{verb} {kind} {item}")
    for item in report.failed:
        typer.echo(f"could not remove {item}", err=True)
    if not found:
        typer.echo("nothing to remove")
    if report.failed:
        raise typer.Exit(output.EXIT_ERROR)


def register(app: typer.Typer) -> None:
    """Add the global options and the agent and conversation commands to the main app."""
    app.callback()(global_options)
    commands: tuple[Callable[..., None], ...] = (
        spawn,
        ls,
        get,
        logs,
        metrics,
        talk.send,
        talk.messages,
        talk.events,
        stop,
        restart,
        gc,
    )
    for command in commands:
        app.command()(command)
