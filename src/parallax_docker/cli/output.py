"""What the CLI prints: tables for people, JSON for scripts, errors with their exit codes.

Pure formatting; the commands in ``cli/agents.py`` and ``cli/talk.py`` call these with models
from the client.

Exit codes (docs/cli.md shows the same table):

==  ==========================================================================================
0   success
1   any other error (INTERNAL_ERROR, ENGINE_ERROR, INSECURE_SPAWN, RUNTIME_UNAVAILABLE, ...)
2   usage or validation: a bad option or field (VALIDATION_ERROR, PAYLOAD_TOO_LARGE, ...)
3   not found: AGENT_NOT_FOUND, IMAGE_NOT_FOUND, EXECUTION_NOT_FOUND
4   conflict: CONFLICT (id or name taken), AGENT_STATE, AGENT_BUSY, EXECUTION_IN_USE
5   the Docker engine is unreachable: SOCKET_ERROR
6   the service is unreachable, timed out or is not a parallax-docker service
7   authentication: UNAUTHORIZED (missing or wrong token), FORBIDDEN, HOST_NOT_ALLOWED,
    ORIGIN_NOT_ALLOWED
8   refused by policy: VOLUME_FORBIDDEN, NETWORK_FORBIDDEN, RUNTIME_FORBIDDEN, ``*_FORBIDDEN``
9   resources: LIMIT_ABOVE_HOST (a limit above the host), RESOURCE_LIMIT (no capacity left)
10  the agent failed: HEALTH_CHECK_FAILED, NETWORK_ERROR, SPAWN_INTERRUPTED,
    PREVIEW_UNREACHABLE; an error answer to ``send --wait``
130 interrupted (Ctrl-C)
==  ==========================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from parallax_docker import resources
from parallax_docker.client.errors import code_of
from parallax_docker.client.frames import EventFrame
from parallax_docker.errors import ParallaxError
from parallax_docker.models import AgentHandle, AgentMessage, MetricsResponse

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_ENGINE_DOWN = 5
EXIT_SERVICE_DOWN = 6
EXIT_AUTH = 7
EXIT_FORBIDDEN = 8
EXIT_RESOURCES = 9
EXIT_AGENT_FAILED = 10
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[str, int] = {
    "VALIDATION_ERROR": EXIT_USAGE,
    "PAYLOAD_TOO_LARGE": EXIT_USAGE,
    "CONFIG_ERROR": EXIT_USAGE,
    "BAD_REQUEST": EXIT_USAGE,
    "AGENT_NOT_FOUND": EXIT_NOT_FOUND,
    "IMAGE_NOT_FOUND": EXIT_NOT_FOUND,
    "EXECUTION_NOT_FOUND": EXIT_NOT_FOUND,
    "NOT_FOUND": EXIT_NOT_FOUND,
    "CONFLICT": EXIT_CONFLICT,
    "AGENT_STATE": EXIT_CONFLICT,
    "AGENT_BUSY": EXIT_CONFLICT,
    "EXECUTION_IN_USE": EXIT_CONFLICT,
    "RUNTIME_UNAVAILABLE": EXIT_ERROR,
    "SOCKET_ERROR": EXIT_ENGINE_DOWN,
    "SERVICE_UNREACHABLE": EXIT_SERVICE_DOWN,
    "REQUEST_TIMEOUT": EXIT_SERVICE_DOWN,
    "BAD_RESPONSE": EXIT_SERVICE_DOWN,
    "UNAUTHORIZED": EXIT_AUTH,
    "FORBIDDEN": EXIT_AUTH,
    "HOST_NOT_ALLOWED": EXIT_AUTH,
    "ORIGIN_NOT_ALLOWED": EXIT_AUTH,
    "VOLUME_FORBIDDEN": EXIT_FORBIDDEN,
    "NETWORK_FORBIDDEN": EXIT_FORBIDDEN,
    "RESOURCE_LIMIT": EXIT_RESOURCES,
    "LIMIT_ABOVE_HOST": EXIT_RESOURCES,
    "HEALTH_CHECK_FAILED": EXIT_AGENT_FAILED,
    "NETWORK_ERROR": EXIT_AGENT_FAILED,
    "SPAWN_INTERRUPTED": EXIT_AGENT_FAILED,
    "PREVIEW_UNREACHABLE": EXIT_AGENT_FAILED,
    "CONTEXT_FILES_FAILED": EXIT_AGENT_FAILED,
}

_BY_STATUS: dict[int, int] = {
    400: EXIT_USAGE,
    401: EXIT_AUTH,
    403: EXIT_FORBIDDEN,
    404: EXIT_NOT_FOUND,
    409: EXIT_CONFLICT,
    413: EXIT_USAGE,
    422: EXIT_USAGE,
    503: EXIT_ENGINE_DOWN,
    507: EXIT_RESOURCES,
}

_STATUS_STYLE = {
    "ready": "green",
    "busy": "cyan",
    "starting": "yellow",
    "pending": "yellow",
    "stopping": "yellow",
    "stopped": "dim",
    "error": "bold red",
}


def exit_code_for(exc: ParallaxError) -> int:
    """The process exit code for an error: by its code, else by its HTTP status family."""
    code = code_of(exc)
    if code in EXIT_CODES:
        return EXIT_CODES[code]
    if code.endswith("_FORBIDDEN"):
        return EXIT_FORBIDDEN
    status = exc.details.get("status") if type(exc) is ParallaxError else exc.http_status
    if isinstance(status, int) and status in _BY_STATUS:
        return _BY_STATUS[status]
    return EXIT_ERROR


def error_text(exc: ParallaxError) -> str:
    """``error [CODE]: message`` and ``hint: resolution``, as printed to stderr."""
    return f"error [{code_of(exc)}]: {exc.message}\nhint: {exc.resolution}"


def to_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> str:
    """Models as the API writes them (camelCase), indented."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json", by_alias=True)
    elif isinstance(value, dict):
        data = {
            key: (
                item.model_dump(mode="json", by_alias=True) if isinstance(item, BaseModel) else item
            )
            for key, item in value.items()
        }
    else:
        data = [item.model_dump(mode="json", by_alias=True) for item in value]
    return json.dumps(data, indent=2, default=_list_of_models)


def _list_of_models(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(type(value).__name__)


def human_bytes(value: int | float | None) -> str:
    return "-" if value is None else resources.human_bytes(value)


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """How long ago an ISO 8601 time was (``3m12s``), or ``-``."""
    if not timestamp:
        return "-"
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.year < 1971:  # the engine's zero time: never started
        return "-"
    current = now or datetime.now(UTC)
    return human_duration((current - when).total_seconds())


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def agents_table(agents: Iterable[AgentHandle], now: datetime | None = None) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "NAME", "TYPE", "STATUS", "ROLE", "IMAGE", "UP", "MEMORY", "CPU"):
        table.add_column(column, no_wrap=column in ("ID", "NAME", "STATUS", "IMAGE"))
    for agent in agents:
        running = agent.status.value in ("ready", "busy", "starting")
        table.add_row(
            agent.id,
            agent.name,
            agent.type,
            status_text(agent.status.value + (" (stale)" if agent.stale else "")),
            agent.role or "-",
            agent.image,
            age(agent.started_at, now) if running else "-",
            agent.resources.memory,
            f"{agent.resources.cpu:g}",
        )
    return table


def agent_detail(agent: AgentHandle) -> Table:
    """One agent as two columns: field and value. Env values are never in a handle."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", agent.id),
        ("name", agent.name),
        ("type", agent.type),
        ("status", status_text(agent.status.value)),
        ("container", f"{agent.container_name} ({(agent.container_id or '-')[:12]})"),
        ("image", agent.image),
        ("network", agent.network),
        ("role", agent.role or "-"),
        ("reports to", agent.reports_to or "-"),
        ("capabilities", ", ".join(agent.capabilities) or "-"),
        (
            "resources",
            f"memory {agent.resources.memory}, cpu {agent.resources.cpu:g}, "
            f"pids {agent.resources.pids_limit}"
            + (f", timeout {agent.resources.timeout}s" if agent.resources.timeout else ""),
        ),
        ("volumes", ", ".join(agent.volumes) or "-"),
        ("env keys", ", ".join(agent.env_keys) or "-"),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted(agent.labels.items())) or "-"),
        ("workdir", agent.workdir or "-"),
        ("execution", agent.execution_id or "-"),
        ("auto restart", "yes" if agent.auto_restart else "no"),
        ("idle timeout", f"{agent.idle_timeout}s" if agent.idle_timeout else "-"),
        ("created", agent.created_at or "-"),
        ("started", agent.started_at or "-"),
        ("finished", agent.finished_at or "-"),
        ("exit code", "-" if agent.exit_code is None else str(agent.exit_code)),
        ("health", agent.health or "-"),
    ]
    if agent.error:
        rows.append(("error", Text(f"[{agent.error_code or '?'}] {agent.error}", style="red")))
    if agent.stale:
        rows.append(("note", Text("stale: the engine is unreachable", style="yellow")))
    for name, value in rows:
        table.add_row(name, value)
    return table


def metrics_table(samples: Sequence[MetricsResponse], names: dict[str, str] | None = None) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in (
        "AGENT",
        "CPU %",
        "HOST CPU %",
        "MEMORY",
        "LIMIT",
        "MEM %",
        "PIDS",
        "NET RX",
        "NET TX",
        "UP",
    ):
        table.add_column(column, justify="left" if column == "AGENT" else "right")
    for sample in samples:
        label = sample.agent_id
        if names and names.get(sample.agent_id) not in (None, sample.agent_id):
            label = f"{names[sample.agent_id]} ({sample.agent_id})"
        table.add_row(
            label,
            f"{sample.cpu:.1f}",
            f"{sample.cpu_host_percent:.1f}",
            human_bytes(sample.memory),
            human_bytes(sample.memory_limit),
            f"{sample.memory_percent:.1f}",
            str(sample.pids),
            human_bytes(sample.network.rx_bytes),
            human_bytes(sample.network.tx_bytes),
            human_duration(sample.uptime),
        )
    return table


PIPE_WIDTH = 250


def messages_table(messages: Sequence[AgentMessage], width: int = 120) -> Table:
    """The conversation: time, direction, type and the text (long texts cut)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("TIME", "DIRECTION", "TYPE", "CONTENT"):
        table.add_column(column, no_wrap=column != "CONTENT")
    for message in messages:
        text = message.content if len(message.content) <= width else message.content[:width] + "..."
        style = "red" if message.type == "error" else ""
        table.add_row(message.timestamp, message.direction, message.type, Text(text, style=style))
    return table


def event_line(frame: EventFrame) -> str:
    """One event as a line: time, event, agent id and status, then the other data fields."""
    when = "-"
    if isinstance(frame.timestamp, int | float):
        stamp = datetime.fromtimestamp(frame.timestamp, UTC)
        when = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    elif isinstance(frame.timestamp, str):
        when = frame.timestamp
    parts = [when, frame.event]
    agent = frame.data.get("agent")
    if isinstance(agent, dict):
        parts.append(str(agent.get("id", "-")))
        if agent.get("status"):
            parts.append(f"status={agent['status']}")
    for key, value in sorted(frame.data.items()):
        if key != "agent" and not isinstance(value, dict | list):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def console(stderr: bool = False) -> Console:
    """A console for tables: the terminal's width, or wide enough to cut nothing when piped."""
    made = Console(stderr=stderr, highlight=False)
    if not made.is_terminal:
        made = Console(stderr=stderr, highlight=False, width=PIPE_WIDTH)
    return made
