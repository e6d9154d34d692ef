"""``parallax-docker threads``: spawn, list, talk to, follow and stop threads.

A thread answers its spawn at once; ``spawn --wait`` and ``send --wait`` follow its events
(``thread_event`` frames on the service's WebSocket) until the turn is over.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from parallax_docker.cli import output
from parallax_docker.cli.connection import JsonOpt, connection_of, reporting
from parallax_docker.cli.spawn_options import parse_env, split_pair
from parallax_docker.client.streams import EventStream
from parallax_docker.errors import ValidationError
from parallax_docker.models import AgentType
from parallax_docker.thread_models import ApprovalPreset, ThreadEventBody, ThreadHandle

threads_app = typer.Typer(no_args_is_help=True)

ThreadArg = Annotated[str, typer.Argument(help="Thread id.", show_default=False)]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Follow the thread's events until the turn is over.")
]
# Events after which a waiting command stops following.
_TURN_OVER = {"thread_turn_complete", "thread_failed", "thread_stopped", "thread_completed"}
_STYLE = {
    "ready": "green",
    "running": "cyan",
    "starting": "yellow",
    "preparing": "yellow",
    "idle": "dim",
    "blocked": "magenta",
    "completed": "green",
    "failed": "bold red",
    "stopped": "dim",
}


@threads_app.command("ls")
def ls(
    ctx: typer.Context,
    execution: Annotated[str | None, typer.Option("--execution", help="Only this one.")] = None,
    role: Annotated[str | None, typer.Option("--role", help="Only this role.")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="Repeatable.")] = None,
    agent_type: Annotated[list[str] | None, typer.Option("--type", help="Repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List threads."""
    with reporting(), connection_of(ctx).client() as client:
        found = client.list_threads(
            execution_id=execution, role=role, status=status, agent_type=agent_type
        )
    if as_json:
        typer.echo(output.to_json({"threads": found, "count": len(found)}))
    elif not found:
        typer.echo("no threads")
    else:
        output.console().print(threads_table(found))


@threads_app.command("get")
def get(ctx: typer.Context, thread: ThreadArg, as_json: JsonOpt = False) -> None:
    """Show one thread."""
    with reporting(), connection_of(ctx).client() as client:
        handle = client.get_thread(thread)
    if as_json:
        typer.echo(output.to_json(handle))
    else:
        output.console().print(thread_detail(handle))


@threads_app.command("spawn")
def spawn(
    ctx: typer.Context,
    execution: Annotated[str, typer.Option("--execution", "-x", help="The executionId.")],
    agent_type: Annotated[AgentType, typer.Option("--type", "-t", help="The agent's CLI.")],
    objective: Annotated[
        str, typer.Option("--objective", "-o", help="The first turn; '-' reads standard input.")
    ],
    thread_id: Annotated[str | None, typer.Option("--id", help="Thread id (kept).")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Display name.")] = None,
    role: Annotated[str | None, typer.Option("--role", help="Role in the team.")] = None,
    workspace: Annotated[
        Path | None, typer.Option("--workspace", help="Host folder mounted at /workspace.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE (or KEY); repeatable.")
    ] = None,
    context_file: Annotated[
        list[str] | None,
        typer.Option("--context-file", help="PATH=LOCAL_FILE: written at PATH in the workspace."),
    ] = None,
    preset: Annotated[
        ApprovalPreset | None,
        typer.Option("--preset", help="Approval preset (default autonomous).", show_default=False),
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="Image to run instead.")] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Spawn a thread; with --wait, follow it until its objective's turn is over."""
    text = sys.stdin.read() if objective == "-" else objective
    fields: dict[str, Any] = {
        "executionId": execution,
        "agentType": agent_type,
        "objective": text,
        "name": name or thread_id or f"{agent_type.value} thread",
    }
    optional = {"id": thread_id, "role": role, "approvalPreset": preset, "image": image}
    fields.update({key: value for key, value in optional.items() if value is not None})
    if workspace is not None:
        fields["workspace"] = {"path": str(workspace.resolve())}
    if env:
        fields["env"] = parse_env(env)
    if context_file:
        fields["contextFiles"] = [_context_file(entry) for entry in context_file]
    with reporting(), connection_of(ctx).client() as client:
        if not wait:
            handle = client.spawn_thread(**fields)
            typer.echo(output.to_json(handle) if as_json else handle.id)
            return
        # Every event, from before the spawn: the id may be the service's choice.
        with client.events() as stream:
            handle = client.spawn_thread(**fields)
            typer.echo(handle.id, err=True)
            _follow(handle.id, stream, as_json)


@threads_app.command("send")
def send(
    ctx: typer.Context,
    thread: ThreadArg,
    message: Annotated[
        str | None, typer.Argument(help="The message; '-' reads standard input.")
    ] = None,
    raw: Annotated[str | None, typer.Option("--raw", help="Terminal input, e.g. $'\\x03'.")] = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", help="A key, e.g. C-c; repeatable.")
    ] = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send a thread a message (its next turn), or interrupt its turn with --key C-c."""
    text = sys.stdin.read() if message == "-" else message
    with reporting(), connection_of(ctx).client() as client:
        if not wait:
            client.send_to_thread(thread, text, raw=raw, keys=key)
            typer.echo("sent")
            return
        with client.events(agent_id=thread) as stream:
            client.send_to_thread(thread, text, raw=raw, keys=key)
            _follow(thread, stream, as_json)


@threads_app.command("stop")
def stop(
    ctx: typer.Context,
    thread: ThreadArg,
    force: Annotated[bool, typer.Option("--force", help="Kill at once.")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Grace period in seconds.", min=0)
    ] = None,
) -> None:
    """Stop a thread (its agent is stopped and removed)."""
    timeout_ms = None if timeout is None else int(timeout * 1000)
    with reporting(), connection_of(ctx).client() as client:
        client.stop_thread(thread, force=force, timeout_ms=timeout_ms)
    typer.echo(f"stopped {thread}")


@threads_app.command("events")
def events(
    ctx: typer.Context,
    thread: ThreadArg,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Past events to show.", min=1)] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Then follow live.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a thread's past events (kept across restarts); with --follow, then live ones."""
    with reporting(), connection_of(ctx).client() as client:
        if not follow:
            for past in client.thread_events(thread, limit=limit):
                typer.echo(_event_text(past, as_json))
            return
        # The history joins the live events without a gap (the agent's, filtered).
        with client.events(agent_id=thread, history=limit) as stream:
            for frame in stream:
                event = _thread_event(frame.event, frame.data)
                if event is not None:
                    typer.echo(_event_text(event, as_json))


# -- rendering ----------------------------------------------------------------------------------


def threads_table(threads: Iterable[ThreadHandle]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "NAME", "TYPE", "STATUS", "ROLE", "EXECUTION", "UPDATED"):
        table.add_column(column, no_wrap=column in ("ID", "STATUS", "EXECUTION"))
    for thread in threads:
        table.add_row(
            thread.id,
            thread.name,
            thread.agent_type,
            Text(thread.status.value, style=_STYLE.get(thread.status.value, "")),
            thread.role or "-",
            thread.execution_id,
            output.age(thread.updated_at) + " ago",
        )
    return table


def thread_detail(thread: ThreadHandle) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    workspace = thread.workspace.path if thread.workspace and thread.workspace.path else "-"
    rows: list[tuple[str, str | Text]] = [
        ("id", thread.id),
        ("name", thread.name),
        ("type", thread.agent_type),
        ("status", Text(thread.status.value, style=_STYLE.get(thread.status.value, ""))),
        ("execution", thread.execution_id),
        ("role", thread.role or "-"),
        ("approval", thread.approval_preset.value),
        ("workspace", workspace),
        ("objective", thread.objective),
        ("created", thread.created_at),
        ("updated", thread.updated_at),
        ("summary", thread.summary or "-"),
    ]
    if thread.error:
        rows.append(("error", Text(f"[{thread.error_code or '?'}] {thread.error}", style="red")))
    for field, value in rows:
        table.add_row(field, value)
    return table


def _event_text(event: ThreadEventBody, as_json: bool) -> str:
    if as_json:
        return event.model_dump_json(by_alias=True)
    details = []
    for key in ("reason", "code", "confidence", "error"):
        if key in event.data:
            details.append(f"{key}={event.data[key]}")
    line = " ".join([event.timestamp, event.type, *details])
    output_text = event.data.get("output")
    return f"{line}\n{output_text}" if isinstance(output_text, str) else line


def _thread_event(name: str, data: dict[str, Any]) -> ThreadEventBody | None:
    body = data.get("event")
    if name != "thread_event" or not isinstance(body, dict):
        return None
    return ThreadEventBody.model_validate(body)


def _follow(thread_id: str, stream: EventStream, as_json: bool) -> None:
    """Print the thread's events until its turn is over; exit 10 when the turn failed."""
    for frame in stream:
        event = _thread_event(frame.event, frame.data)
        if event is None or event.thread_id != thread_id:
            continue
        typer.echo(_event_text(event, as_json))
        if event.type in _TURN_OVER:
            if event.type == "thread_failed":
                raise typer.Exit(output.EXIT_AGENT_FAILED)
            return


def _context_file(entry: str) -> dict[str, str]:
    path, local = split_pair(entry, "--context-file")
    try:
        content = Path(local).read_text()
    except OSError as exc:
        raise ValidationError(f"--context-file {path}: cannot read {local!r}: {exc}") from None
    return {"path": path, "content": content}
