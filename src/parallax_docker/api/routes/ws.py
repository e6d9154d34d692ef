"""WebSockets: live events (``/ws``, ``/ws/events?agentId=``) and a terminal into an agent.

Event frames are ``{event, data, timestamp}`` (docs/messaging.md). Each client reads from its
own bounded subscription of the event bus: a client that falls behind loses its oldest events
and is told so with an ``events_dropped`` frame; one whose socket accepts nothing for
``SEND_TIMEOUT_S`` is closed. Neither ever holds up the service or the other clients. A client
may also ask for the metrics of the agents it shows (api/metrics_watch.py).

The terminal (``/ws/agents/{id}/terminal``) is a TTY exec in the agent: binary (or plain text)
frames carry keystrokes in and output out; a text frame holding a JSON object with a ``type`` is
a control frame: ``{"type": "resize", "cols": C, "rows": R}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from parallax_docker.api.metrics_watch import MetricsWatch, parse_control, read_metrics
from parallax_docker.errors import ParallaxError, ValidationError
from parallax_docker.runtime.clock import iso_time
from parallax_docker.runtime.events import RuntimeEvent, Subscription
from parallax_docker.runtime.runtime import Runtime
from parallax_docker.runtime.terminal import AgentTerminal

log = logging.getLogger(__name__)

router = APIRouter(tags=["websockets"])

MAX_HISTORY = 1000
SEND_TIMEOUT_S = 30.0
DEFAULT_COLS, DEFAULT_ROWS = 80, 24
MAX_TERMINAL_SIDE = 1000
# Close codes: 1000 normal; 4000 + the HTTP status of an error sent just before (4404, 4409).
CLOSE_NORMAL = 1000
CLOSE_TOO_SLOW = 1013  # "try again later": distinct from the auth refusal (1008)


def frame(event: RuntimeEvent) -> str:
    return json.dumps(
        {"event": event.event, "data": event.data, "timestamp": iso_time(event.timestamp)},
        default=str,
    )


def _int_param(websocket: WebSocket, name: str, default: int, low: int, high: int) -> int:
    raw = websocket.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low} and {high}")
    return value


async def _refuse(websocket: WebSocket, exc: ParallaxError) -> None:
    """Accept, say why in one JSON frame, and close with 4000 + the error's HTTP status."""
    if websocket.client_state == WebSocketState.CONNECTING:
        await websocket.accept()
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", **exc.to_body()}))
        await websocket.close(code=4000 + exc.http_status, reason=exc.code)


async def _first_of(*jobs: Awaitable[None]) -> None:
    """Run ``jobs`` until the first ends; cancel the rest."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, (WebSocketDisconnect, ConnectionError)):
                raise exc
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- events -------------------------------------------------------------------------------


# Query parameters are declared (as plain strings, checked here) so that the app's refusal of
# unknown parameters knows them; a bad value gets an error frame, not a bare close.
_Text = Annotated[str | None, Query()]


@router.websocket("/ws")
async def all_events(websocket: WebSocket, history: _Text = None) -> None:
    """Every event of every agent. ``?history=N`` first replays the last N events."""
    await _events(websocket, None)


@router.websocket("/ws/events")
async def agent_events(
    websocket: WebSocket,
    agent_id: Annotated[str | None, Query(alias="agentId")] = None,
    history: _Text = None,
) -> None:
    """The events of one agent (``?agentId=``), or of all without it; ``?history=N`` too."""
    await _events(websocket, agent_id or None)


async def _events(websocket: WebSocket, agent_id: str | None) -> None:
    runtime: Runtime = websocket.app.state.runtime
    try:
        history = _int_param(websocket, "history", 0, 0, MAX_HISTORY)
    except ParallaxError as exc:
        await _refuse(websocket, exc)
        return
    await websocket.accept()
    # The history read is queued before the subscription starts, with no await in between:
    # the replay and the live events neither overlap nor leave a gap.
    past = runtime.store.recent_events(agent_id, history) if history else None
    subscription = runtime.bus.subscribe(agent_id)
    # Events and metrics rounds share the socket: one frame at a time.
    sending = asyncio.Lock()

    async def send(text: str) -> None:
        async with sending:
            await asyncio.wait_for(websocket.send_text(text), SEND_TIMEOUT_S)

    async def send_event(event: RuntimeEvent) -> None:
        await send(frame(event))

    watch = MetricsWatch(lambda agent: read_metrics(runtime, agent))
    try:
        await _first_of(
            _send_events(send, subscription, past),
            watch.rounds(send_event),
            _read_controls(websocket, watch, send),
        )
    except TimeoutError:
        log.info("closing a WebSocket client that stopped reading events")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                websocket.close(code=CLOSE_TOO_SLOW, reason="too slow"), SEND_TIMEOUT_S
            )
    finally:
        subscription.close()


async def _read_controls(
    websocket: WebSocket, watch: MetricsWatch, send: Callable[[str], Awaitable[None]]
) -> None:
    """Take the client's control frames until it leaves; a bad one is answered, not fatal."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            continue
        try:
            watch.update(parse_control(text))
        except ValidationError as exc:
            await send(json.dumps({"type": "error", **exc.to_body()}))


async def _send_events(
    send: Callable[[str], Awaitable[None]],
    subscription: Subscription,
    past: Awaitable[list[RuntimeEvent]] | None,
) -> None:
    if past is not None:
        for event in await past:
            await send(frame(event))
    reported = 0
    while True:
        event = await subscription.get()
        if subscription.dropped > reported:
            notice = RuntimeEvent(
                event="events_dropped",
                data={"dropped": subscription.dropped - reported, "total": subscription.dropped},
                agent_id=subscription.agent_id,
            )
            reported = subscription.dropped
            await send(frame(notice))
        await send(frame(event))


# -- terminal -----------------------------------------------------------------------------


@router.websocket("/ws/agents/{agent_id}/terminal")
async def terminal(
    websocket: WebSocket,
    agent_id: str,
    cols: _Text = None,
    rows: _Text = None,
    mode: _Text = None,
) -> None:
    """An interactive terminal in the agent: a login shell, or its CLI with ``?mode=cli``."""
    runtime: Runtime = websocket.app.state.runtime
    try:
        width = _int_param(websocket, "cols", DEFAULT_COLS, 1, MAX_TERMINAL_SIDE)
        height = _int_param(websocket, "rows", DEFAULT_ROWS, 1, MAX_TERMINAL_SIDE)
        mode = mode or "shell"
        if mode not in ("shell", "cli"):
            raise ValidationError("mode must be 'shell' or 'cli'")
        session = await runtime.terminals.open(agent_id, cols=width, rows=height, cli=mode == "cli")
    except ParallaxError as exc:
        await _refuse(websocket, exc)
        return
    await websocket.accept()
    try:
        await _first_of(_terminal_out(websocket, session), _terminal_in(websocket, session))
    finally:
        await session.close()


async def _terminal_out(websocket: WebSocket, session: AgentTerminal) -> None:
    while data := await session.read():
        await websocket.send_bytes(data)
    code: int | None = None
    with contextlib.suppress(ParallaxError):
        code = await session.exit_code()
    await websocket.send_text(json.dumps({"type": "exit", "exitCode": code}))
    await websocket.close(code=CLOSE_NORMAL)


async def _terminal_in(websocket: WebSocket, session: AgentTerminal) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data: bytes | None = message.get("bytes")
        text: str | None = message.get("text")
        if text is not None:
            control = _control(text)
            if control is None:
                data = text.encode()
            elif control.get("type") == "resize":
                await _resize(session, control)
                continue
            elif control.get("type") == "input" and isinstance(control.get("data"), str):
                data = control["data"].encode()
            else:
                continue
        if data:
            await session.write(data)


def _control(text: str) -> dict[str, Any] | None:
    """A control frame is a JSON object with a ``type``; anything else is typed input."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("type"), str) else None


async def _resize(session: AgentTerminal, control: dict[str, Any]) -> None:
    cols, rows = control.get("cols"), control.get("rows")
    if not (isinstance(cols, int) and isinstance(rows, int)):
        return
    if 1 <= cols <= MAX_TERMINAL_SIDE and 1 <= rows <= MAX_TERMINAL_SIDE:
        with contextlib.suppress(ParallaxError):
            await session.resize(cols, rows)
