"""The HTTP server: the four provider protocols on one port, and the control API.

Control API (JSON; ``{tenant}`` is the API key the CLI presents, URL-encoded):

- ``POST /_standin/tenants/{tenant}/replies`` ``{"replies": [Reply, ...]}``: append to the script
  (400 with ``{"error"}`` for a reply that is not valid; nothing is queued then);
- ``GET /_standin/tenants/{tenant}/replies``: what is still queued;
- ``GET /_standin/tenants/{tenant}/requests``: every request recorded for the tenant, oldest
  first: ``protocol``, ``method``, ``path``, ``query``, ``headers``, ``body``, ``main``,
  ``transcript`` (the conversation's texts), ``reply`` and ``call`` (the tool call sent);
- ``DELETE /_standin/tenants/{tenant}``: forget it (calls hanging for it give up);
- ``GET /_standin/health``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import select
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import anthropic, chat, gemini, responses
from .script import DEFAULT_TENANT, Book, Reply
from .tools import Call, NoToolError, plan_call, text_edit
from .wire import Request, Response, json_response

PROTOCOLS: tuple[ModuleType, ...] = (anthropic, responses, gemini, chat)
CONTROL = "/_standin/"
MAX_BODY = 64 * 1024 * 1024
# A hanging call gives up after this long even if nobody resets its tenant.
HANG_MAX_S = 900.0
_MODELS = {
    "object": "list",
    "has_more": False,
    "data": [
        {
            "id": "standin",
            "object": "model",
            "type": "model",
            "created": 0,
            "owned_by": "standin",
            "display_name": "Stand-in",
        }
    ],
    "models": [{"name": "models/standin", "displayName": "Stand-in"}],
}


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], book: Book | None = None) -> None:
        self.book = book or Book()
        super().__init__(address, _Handler)


def serve(host: str = "0.0.0.0", port: int = 8080) -> StandinServer:
    return StandinServer((host, port))


def start_in_thread(host: str = "127.0.0.1", port: int = 0) -> StandinServer:
    """A server on a free port, served from a daemon thread (for unit tests)."""
    server = StandinServer((host, port))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def running(host: str = "127.0.0.1", port: int = 0) -> Iterator[StandinServer]:
    """``start_in_thread``, shut down and closed at the end of the block."""
    server = start_in_thread(host, port)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandinServer
    server_version = "standin/1"
    _released: threading.Event | None = None

    def log_message(self, format: str, *args: Any) -> None:
        return

    # Every method goes through one dispatcher.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    def _dispatch(self) -> None:
        try:
            request = self._read()
        except ValueError as exc:
            self._send(json_response(400, {"error": str(exc)}))
            return
        if request.path.startswith(CONTROL):
            self._send(self._control(request))
            return
        if request.method == "GET" and request.path.rstrip("/") in (
            "/v1/models",
            "/models",
            "/v1beta/models",
        ):
            self._send(json_response(200, _MODELS))
            return
        for protocol in PROTOCOLS:
            kind = protocol.route(request)
            if kind is not None:
                self._send(self._model_call(protocol, kind, request))
                return
        tenant = _any_key(request)
        self.server.book.record(tenant, _entry("unknown", request, main=False))
        self._send(json_response(404, {"error": {"message": f"no route for {request.path}"}}))

    # -- requests ---------------------------------------------------------------------------

    def _read(self) -> Request:
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        raw = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        elif headers.get("content-length"):
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise ValueError("request body too large")
            raw = self.rfile.read(length)
        encoding = headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        body: Any = None
        if raw and encoding in ("", "gzip", "deflate", "identity"):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        return Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers=headers,
            body=body,
            raw=raw,
        )

    def _read_chunked(self) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return bytes(data)
            data.extend(self.rfile.read(size))
            self.rfile.readline()
            if len(data) > MAX_BODY:
                raise ValueError("request body too large")

    # -- model calls ------------------------------------------------------------------------

    def _model_call(self, protocol: ModuleType, kind: str, request: Request) -> Response:
        book = self.server.book
        tenant = protocol.tenant(request) or DEFAULT_TENANT
        if kind != "generate":
            book.record(tenant, _entry(protocol.NAME, request, main=False, kind=kind))
            return protocol.other(kind, request)  # type: ignore[no-any-return]
        main = protocol.is_main(request)
        reply = book.take(tenant) if main else Reply(text="ok")
        call: Call | None = None
        text = reply.text
        if not main and protocol is gemini:
            text = gemini.side_text(request)
        elif reply.is_tool:
            offered = protocol.offers(request)
            try:
                call = plan_call(reply, offered)
            except NoToolError as exc:
                if protocol is chat and not offered:
                    text = text_edit(reply, chat.instructions(request))
                else:
                    text = f"(stand-in) {exc}"
        book.record(
            tenant,
            _entry(
                protocol.NAME,
                request,
                main=main,
                kind=kind,
                transcript=protocol.transcript(request),
                reply=reply.to_json() if main else None,
                call=call.summary() if call is not None else None,
            ),
        )
        released = book.released(tenant)
        if reply.delay_s and released.wait(reply.delay_s):
            return Response(drop=True)
        if reply.kind == "error":
            if reply.error == "hang":
                self._released = released
                return Response(hang=True)
            if reply.error == "drop":
                return Response(drop=True)
            return protocol.error(reply, request)  # type: ignore[no-any-return]
        return protocol.respond(request, reply, call, text)  # type: ignore[no-any-return]

    # -- the control API --------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        parts = [unquote(p) for p in request.path[len(CONTROL) :].split("/") if p]
        book = self.server.book
        if parts == ["health"]:
            return json_response(200, {"ok": True})
        if len(parts) < 2 or parts[0] != "tenants":
            return json_response(404, {"error": "unknown control path"})
        tenant = parts[1]
        rest = parts[2:]
        if request.method == "DELETE" and not rest:
            book.reset(tenant)
            return json_response(200, {"reset": tenant})
        if rest == ["requests"] and request.method == "GET":
            return json_response(200, {"requests": book.requests(tenant)})
        if rest == ["replies"] and request.method == "GET":
            return json_response(200, {"replies": [r.to_json() for r in book.pending(tenant)]})
        if rest == ["replies"] and request.method == "POST":
            body = request.body if isinstance(request.body, dict) else {}
            items = body.get("replies")
            if not isinstance(items, list) or not items:
                return json_response(400, {"error": "replies must be a non-empty list"})
            try:
                replies = [Reply.from_json(item) for item in items]
            except (TypeError, ValueError) as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(200, {"queued": book.queue(tenant, replies)})
        return json_response(404, {"error": "unknown control path"})

    # -- responses --------------------------------------------------------------------------

    def _send(self, response: Response) -> None:
        if response.drop:
            self.close_connection = True
            return
        if response.hang:
            self._hang()
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.frames is None:
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
                return
            # A stream ends when the connection closes.
            self.send_header("connection", "close")
            self.close_connection = True
            self.end_headers()
            for chunk in response.frames:
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _hang(self) -> None:
        """Answer nothing until the client goes away (or the tenant is reset, or a long time)."""
        self.close_connection = True
        deadline = time.monotonic() + HANG_MAX_S
        sock = self.connection
        while time.monotonic() < deadline:
            if self._released is not None and self._released.is_set():
                return
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return
                time.sleep(0.5)


def _any_key(request: Request) -> str:
    for protocol in PROTOCOLS:
        key = protocol.tenant(request)
        if key:
            return str(key)
    return DEFAULT_TENANT


def _entry(protocol: str, request: Request, main: bool, **extra: Any) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "headers": dict(request.headers),
        "body": request.body,
        "main": main,
        **extra,
    }
