"""Talking to agents from a terminal: send a message, read the conversation, follow events."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from parallax_docker.cli import output
from parallax_docker.cli.connection import (
    AgentArg,
    JsonOpt,
    complete_agent,
    connection_of,
    reporting,
)


def send(
    ctx: typer.Context,
    agent: AgentArg,
    message: Annotated[str, typer.Argument(help="The message; '-' reads it from standard input.")],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", "--expect-response", help="Wait for the agent's answer and print it."
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Bound on the turn in seconds (default: the service's turn timeout).",
            min=0.001,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Give an agent a message (a task); with --wait, print its answer.

    An answer of type error (the turn timed out or failed, or the CLI needs a login) goes to
    stderr as 'error [CODE]: ...' and the exit code is 10.
    """
    text = sys.stdin.read() if message == "-" else message
    timeout_ms = None if timeout is None else int(timeout * 1000)
    with reporting(), connection_of(ctx).client() as client:
        result = client.send(agent, text, expect_response=wait, timeout_ms=timeout_ms)
    answer = result.response
    if as_json:
        typer.echo(output.to_json(result))
    elif answer is not None and answer.type == "error":
        code = answer.metadata.get("code", "TURN_FAILED")
        typer.echo(f"error [{code}]: {answer.content}", err=True)
    elif answer is not None:
        typer.echo(answer.content)
    elif not wait:
        typer.echo("sent" if result.sent else "not sent")
    if answer is not None and answer.type == "error":
        raise typer.Exit(output.EXIT_AGENT_FAILED)


def messages(
    ctx: typer.Context,
    agent: AgentArg,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="At most this many, the latest.", min=1)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the conversation with an agent, oldest first."""
    with reporting(), connection_of(ctx).client() as client:
        found = client.messages(agent, limit=limit)
    if as_json:
        typer.echo(output.to_json({"messages": found, "count": len(found)}))
    elif not found:
        typer.echo("no messages")
    else:
        output.console().print(output.messages_table(found))


def events(
    ctx: typer.Context,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent", "-a", help="Only this agent's events.", autocompletion=complete_agent
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", help="Stop after this many events.", min=1)
    ] = None,
    history: Annotated[
        int, typer.Option("--history", help="First replay this many recent events.", min=0)
    ] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON frame per line ({event, data, timestamp}).")
    ] = False,
) -> None:
    """Print live events (agent_started, agent_ready, agent_stopped, ...) until Ctrl-C."""
    with (
        reporting(),
        connection_of(ctx).client() as client,
        client.events(agent_id=agent, history=history) as stream,
    ):
        for seen, frame in enumerate(stream, start=1):
            typer.echo(frame.model_dump_json() if as_json else output.event_line(frame))
            if count is not None and seen >= count:
                break
