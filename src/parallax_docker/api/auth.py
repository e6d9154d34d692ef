"""Bearer-token authentication for every HTTP route and every WebSocket (pure ASGI).

When ``PARALLAX_API_TOKEN`` is set, a request must carry ``Authorization: Bearer <token>``.
Browsers cannot set headers on a WebSocket, so a WebSocket may instead carry the token as
``?token=<token>`` or as a ``Sec-WebSocket-Protocol`` entry ``bearer.<base64url(token)>``
(unpadded; offer ``bearer`` as well and the server answers with it). The token is removed from
the scope before the app sees it. Tokens are compared in constant time (``hmac.compare_digest``
on SHA-256 digests, so not even the length is compared early).

A refused HTTP request gets 401 ``UNAUTHORIZED`` in the usual ``{error, code, resolution}``
shape with ``WWW-Authenticate: Bearer``; a refused WebSocket is accepted and closed at once with
code 1008 (policy violation), so that the client can tell why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from urllib.parse import parse_qsl, urlencode

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parallax_docker.api.refusals import close_websocket, send_error
from parallax_docker.errors import UnauthorizedError

WS_PROTOCOL = "bearer"
WS_PROTOCOL_PREFIX = "bearer."
QUERY_PARAM = "token"
_CHALLENGE = b'Bearer realm="parallax-docker"'


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, token: SecretStr) -> None:
        self.app = app
        self._expected = _digest(token.get_secret_value().encode())

    def _matches(self, presented: bytes | None) -> bool:
        # Always compare, even with nothing presented: the time taken does not say which.
        return hmac.compare_digest(_digest(presented or b""), self._expected) and bool(presented)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._matches(_header_token(scope)):
                await self.app(scope, receive, send)
            else:
                await _refuse_http(send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = _header_token(scope)
        query, scope = _take_query_token(scope)
        protocol, offered_plain, scope = _take_protocol_token(scope)
        if not any(self._matches(token) for token in (header, query, protocol) if token):
            await _refuse_websocket(receive, send, offered_plain)
            return
        if not offered_plain:
            await self.app(scope, receive, send)
            return

        async def answer_protocol(message: Message) -> None:
            # A browser that offered "bearer" needs it back, or it drops the connection.
            if message["type"] == "websocket.accept" and not message.get("subprotocol"):
                message = {**message, "subprotocol": WS_PROTOCOL}
            await send(message)

        await self.app(scope, receive, answer_protocol)


def _header_token(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = bytes(value).strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None


def _take_query_token(scope: Scope) -> tuple[bytes | None, Scope]:
    raw = scope.get("query_string") or b""
    if b"token" not in raw:
        return None, scope
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    token = next((v for k, v in pairs if k == QUERY_PARAM), None)
    rest = [(k, v) for k, v in pairs if k != QUERY_PARAM]
    scope = dict(scope)
    scope["query_string"] = urlencode(rest).encode("latin-1")
    return (token.encode() if token else None), scope


def _take_protocol_token(scope: Scope) -> tuple[bytes | None, bool, Scope]:
    offered: list[str] = list(scope.get("subprotocols") or ())
    token: bytes | None = None
    kept: list[str] = []
    for protocol in offered:
        if protocol.startswith(WS_PROTOCOL_PREFIX):
            encoded = protocol[len(WS_PROTOCOL_PREFIX) :]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError):
                token = None
        else:
            kept.append(protocol)
    plain = WS_PROTOCOL in kept
    if len(kept) != len(offered) or plain:
        scope = dict(scope)
        scope["subprotocols"] = [p for p in kept if p != WS_PROTOCOL]
    return token, plain, scope


def _unauthorized() -> UnauthorizedError:
    return UnauthorizedError("a valid API token is required")


async def _refuse_http(send: Send) -> None:
    await send_error(send, _unauthorized(), [(b"www-authenticate", _CHALLENGE)])


async def _refuse_websocket(receive: Receive, send: Send, offered_plain: bool) -> None:
    subprotocol = WS_PROTOCOL if offered_plain else None
    await close_websocket(receive, send, UnauthorizedError.code, subprotocol)


_QUERY_TOKEN = re.compile(r"([?&]" + QUERY_PARAM + r"=)[^&\s\"']*")


class RedactQueryTokenFilter(logging.Filter):
    """Blank ``?token=`` values in log records: the server logs WebSocket request lines whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if QUERY_PARAM + "=" in message:
            record.msg = _QUERY_TOKEN.sub(r"\1[redacted]", message)
            record.args = None
        return True


def redact_query_tokens_in_logs() -> None:
    """Add the filter to every handler of the root logger (records of all loggers pass there)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactQueryTokenFilter) for f in handler.filters):
            handler.addFilter(RedactQueryTokenFilter())
