"""How the pure-ASGI layers (token, Host and Origin, body size) answer a request they refuse.

An HTTP request gets the error's status and ``{error, code, resolution}`` body. A WebSocket is
accepted and closed at once with 1008 (policy violation) and the error code as the reason: a
browser's WebSocket API shows a refused handshake only as a failure, the close code and reason
say why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Receive, Send

from parallax_docker.errors import ParallaxError

WS_POLICY_VIOLATION = 1008


async def send_error(
    send: Send, error: ParallaxError, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(error.to_body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def close_websocket(
    receive: Receive, send: Send, reason: str, subprotocol: str | None = None
) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if subprotocol is not None:
        accept["subprotocol"] = subprotocol
    await send(accept)
    await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION, "reason": reason})
