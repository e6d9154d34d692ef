"""What a preview forwards, and what it answers with (pure): the header policy.

The browser's credentials for the service (``Authorization``, ``Cookie``) never go to the
agent; the agent's headers that would act on the whole origin the API shares with every preview
(cookies, stored data, HSTS, alternative services, reporting endpoints, CORS) never reach the
browser. Every answer is sandboxed (an opaque origin of its own), sends no referrer (a link's
ticket is in its path).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.types import Scope

SANDBOX = (
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads allow-pointer-lock"
)
# Never forwarded to the agent: credentials meant for the service, hop-by-hop headers, and
# what the proxy sets itself.
_DROP_REQUEST = frozenset(
    {
        "authorization",
        "cookie",
        "host",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-prefix",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
# Never passed back to the browser: hop-by-hop, and headers that act on the whole origin the
# API shares with every preview (cookies, stored data, HSTS, alternative services, reporting).
_DROP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "trailer",
        "upgrade",
        "proxy-authenticate",
        # The service's server adds its own.
        "date",
        "server",
        "set-cookie",
        "set-cookie2",
        "clear-site-data",
        "strict-transport-security",
        "alt-svc",
        "nel",
        "report-to",
        "reporting-endpoints",
        "service-worker-allowed",
        "referrer-policy",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
        # Set again below, once: a repeated header would confuse the browser.
        "content-length",
    }
)


@dataclass(frozen=True)
class Target:
    """A preview request: the agent's port, and where the app's root is on the service."""

    agent_id: str
    port: int
    prefix: str  # the path up to the app's root, without the trailing slash
    rest: str  # the raw path below it, with its leading slash ("" when none was given)
    ticket: bool


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


def forwarded_headers(scope: Scope, target: Target) -> list[tuple[str, str]]:
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in scope.get("headers") or ()
        if name.decode("latin-1").lower() not in _DROP_REQUEST
    ]
    host = header(scope, b"host")
    if host:
        headers.append(("x-forwarded-host", host.decode("latin-1")))
    headers.append(("x-forwarded-proto", str(scope.get("scheme") or "http")))
    # Apps that build absolute links can put them under the preview's path.
    headers.append(("x-forwarded-prefix", target.prefix))
    return headers


def answer_headers(
    response: httpx.Response, target: Target, host: str, port: int
) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for name, value in response.headers.raw:
        lower = name.lower()
        if lower.decode("latin-1") in _DROP_RESPONSE:
            continue
        if lower == b"location":
            value = relocate(value.decode("latin-1"), target, host, port).encode("latin-1")
        out.append((lower, value))
    if "content-length" in response.headers:
        # The body goes on as it came (still encoded): its length is the one sent.
        out.append((b"content-length", response.headers["content-length"].encode("latin-1")))
    out.append((b"content-security-policy", SANDBOX.encode()))
    out.append((b"referrer-policy", b"no-referrer"))
    if target.ticket:
        # The sandboxed page's own requests come from an opaque origin ("null"): let it read
        # its app's answers. No credentials go with them (the ticket is in the path).
        out.append((b"access-control-allow-origin", b"*"))
    return out


def relocate(location: str, target: Target, host: str, port: int) -> str:
    """A redirect within the app stays within its preview."""
    for origin in (f"http://{host}:{port}", f"//{host}:{port}"):
        if location.startswith(origin):
            location = location[len(origin) :] or "/"
            break
    if location.startswith("/") and not location.startswith("//"):
        return target.prefix + location
    return location
