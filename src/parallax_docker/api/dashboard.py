"""The web dashboard at ``/ui`` (pure ASGI): the package's static files, with strict headers.

It sits outside the token check on purpose: a browser cannot put an ``Authorization`` header
on a page load, and the files hold no data (the page asks for the token and sends it with every
API call it makes). Only the files found in the package at start-up are served (no path from a
request ever reaches the filesystem), each with an ETag and, when smaller, gzip.

Every answer carries a Content-Security-Policy that allows scripts, styles and connections from
the service's own origin only, no inline script or style attribute, no ``eval``, and, through
Trusted Types, no HTML string sink at all: what an agent prints can only ever become text. The
page cannot be framed, and its files cannot be embedded by another site.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources.abc import Traversable

from starlette.types import ASGIApp, Receive, Scope, Send

from parallax_docker.ui import static_root

PREFIX = "/ui"
INDEX = "index.html"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), usb=()"),
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".svg", ".md", ".txt")
_MIN_GZIP_BYTES = 1024


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: bytes


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            yield from _walk(entry, name + "/")
        elif entry.is_file():
            yield name, entry


def _content_type(name: str) -> str | None:
    dot = name.rfind(".")
    return _TYPES.get(name[dot:]) if dot >= 0 else None


def load_assets(root: Traversable | None = None) -> dict[str, Asset]:
    """Every servable file under ``root``, keyed by its path relative to it ("js/main.js")."""
    assets: dict[str, Asset] = {}
    for name, entry in _walk(root or static_root()):
        content_type = _content_type(name)
        if content_type is None:
            # Anything of a kind we do not name (SHA256SUMS, stray files) is not served.
            continue
        body = entry.read_bytes()
        gzipped = None
        if name.endswith(_COMPRESSIBLE) and len(body) >= _MIN_GZIP_BYTES:
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            gzipped = packed if len(packed) < len(body) else None
        etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        assets[name] = Asset(body, gzipped, content_type, etag)
    return assets


@cache
def packaged_assets() -> dict[str, Asset]:
    """The package's own files, read (and compressed) once per process."""
    return load_assets()


def _header(scope: Scope, wanted: bytes) -> bytes:
    for name, value in scope.get("headers") or ():
        if name == wanted:
            return bytes(value)
    return b""


class DashboardMiddleware:
    """Answer ``/ui`` and ``/ui/<file>``; pass every other request to ``app``."""

    def __init__(self, app: ASGIApp, assets: dict[str, Asset] | None = None) -> None:
        self.app = app
        self.assets = assets if assets is not None else packaged_assets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _error(send, 405, "METHOD_NOT_ALLOWED", "the dashboard only answers GET")
            return
        if path == PREFIX:
            # Relative module imports resolve against the folder: the page lives at /ui/.
            await _respond(send, 308, [(b"location", PREFIX.encode() + b"/")], b"")
            return
        name = path[len(PREFIX) + 1 :] or INDEX
        asset = self.assets.get(name)
        if asset is None:
            await _error(send, 404, "NOT_FOUND", "no such dashboard file")
            return
        await self._serve(scope, send, asset, head=method == "HEAD")

    async def _serve(self, scope: Scope, send: Send, asset: Asset, head: bool) -> None:
        headers = [
            (b"etag", asset.etag),
            # Revalidated on every load (a 304 when unchanged), so an upgrade shows at once.
            (b"cache-control", b"no-cache"),
            (b"vary", b"accept-encoding"),
        ]
        if asset.etag in _header(scope, b"if-none-match").replace(b"W/", b""):
            await _respond(send, 304, headers, b"")
            return
        body = asset.body
        if asset.gzipped is not None and b"gzip" in _header(scope, b"accept-encoding"):
            body = asset.gzipped
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-type", asset.content_type.encode()))
        await _respond(send, 200, headers, body, length=len(body), head=head)


async def _error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(
        {"error": message, "code": code, "resolution": "Open the dashboard at /ui/."}
    ).encode()
    await _respond(send, status, [(b"content-type", b"application/json")], body)


async def _respond(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    length: int | None = None,
    head: bool = False,
) -> None:
    size = len(body) if length is None else length
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, *SECURITY_HEADERS, (b"content-length", str(size).encode())],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})
