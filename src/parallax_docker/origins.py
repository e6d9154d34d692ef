"""Which ``Host`` names and browser ``Origin``s the service answers (pure; api/guard.py uses it).

Two attacks from a web page the user happens to visit are shut out here:

- **DNS rebinding**: a page on ``http://evil.example:3200`` re-points its own name at 127.0.0.1
  and becomes same-origin with the API. Its requests then carry ``Host: evil.example:3200``, so
  a request is served only when its Host is a name the service is served as: a loopback name or
  address (``localhost``, ``127.0.0.0/8``, ``[::1]``), the address ``HOST`` binds when that is a
  specific one, or a name in ``PARALLAX_ALLOWED_HOSTS``. Any port, or none, goes with them: the
  name, not the port, is what a rebinding page controls.
- **Cross-site requests** (forms, ``fetch`` with a "simple" content type, WebSockets, which
  browsers open to any origin): a browser says where a request comes from with ``Origin`` and
  ``Sec-Fetch-Site``. A request whose Origin is neither the service's own (the origin its Host
  names) nor one of ``PARALLAX_ALLOWED_ORIGINS`` is refused, whatever its method: a cross-origin
  page has no business with any route, and reads (logs, terminals, the event stream) are
  where secrets show. Without an Origin, ``Sec-Fetch-Site: cross-site`` or ``same-site`` (another
  port on the same host is the same site) is refused as well. Clients that are not browsers send
  neither header and are not affected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

LOOPBACK_NAME = "localhost"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 1123 host names (letters, digits, hyphens; dot-separated labels), no trailing dot.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\Z")
_PORT_RE = re.compile(r"^[0-9]{1,5}\Z")
_ORIGIN_RE = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<authority>[^/?#@\s]+)\Z")
# Sec-Fetch-Site values a browser sends for a request that another site's page made.
_OTHER_SITE = frozenset({"cross-site", "same-site"})
_UNSPECIFIED = frozenset({"0.0.0.0", "::", ""})

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_T = TypeVar("_T")


@dataclass(frozen=True)
class Authority:
    """``host[:port]`` with the host lower-cased (an IPv6 address without its brackets)."""

    host: str
    port: int | None
    ip: IpAddress | None = None

    def same_host(self, other: Authority) -> bool:
        if self.ip is not None or other.ip is not None:
            return self.ip == other.ip
        return self.host == other.host


def parse_authority(text: str) -> Authority | None:
    """``localhost:3200``, ``127.0.0.1``, ``[::1]:3200`` -> Authority; None when malformed."""
    text = text.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        try:
            ip: IpAddress | None = ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, sep, port_text = text.partition(":")
        rest = sep + port_text
        ip = _ipv4(host)
        if ip is None and not _NAME_RE.match(host):
            return None
    port: int | None = None
    if rest:
        if not rest.startswith(":") or not _PORT_RE.match(rest[1:]):
            return None
        port = int(rest[1:])
        if not 0 < port < 65536:
            return None
    return Authority(host, port, ip)


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    # Only the canonical dotted quad: "127.1" or "0x7f.0.0.1" are not what a browser sends.
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return None
    return address if str(address) == text else None


def is_loopback(authority: Authority) -> bool:
    if authority.ip is not None:
        return authority.ip.is_loopback
    return authority.host == LOOPBACK_NAME


@dataclass(frozen=True)
class Origin:
    scheme: str
    authority: Authority

    @property
    def port(self) -> int | None:
        return self.authority.port or _DEFAULT_PORTS.get(self.scheme)

    def same(self, other: Origin) -> bool:
        return (
            self.scheme == other.scheme
            and self.authority.same_host(other.authority)
            and self.port == other.port
        )


def parse_origin(text: str) -> Origin | None:
    """``http://localhost:5173`` -> Origin; None for ``null``, paths, user info or junk."""
    match = _ORIGIN_RE.match(text.strip().lower())
    if match is None or match["scheme"] not in _DEFAULT_PORTS:
        return None
    authority = parse_authority(match["authority"])
    return None if authority is None else Origin(match["scheme"], authority)


class Verdict(Enum):
    SERVE = "serve"
    # Served, with CORS headers for an allowed other origin.
    SERVE_CORS = "serve-cors"
    # A CORS preflight from an allowed origin: answered here, never routed.
    PREFLIGHT = "preflight"
    BAD_HOST = "HOST_NOT_ALLOWED"
    BAD_ORIGIN = "ORIGIN_NOT_ALLOWED"


class OriginPolicy:
    """The allowed Host names and Origins; ``judge`` decides one request from its headers."""

    def __init__(
        self,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        bound_host: str = "127.0.0.1",
    ) -> None:
        names = list(allowed_hosts)
        if bound_host.strip("[]") not in _UNSPECIFIED:
            # Bound to one specific address (or name): that is a name the service is served as.
            names.append(bound_host)
        self._hosts = [_must(host_entry(name), name, "host") for name in names]
        self._origins = [_must(parse_origin(text), text, "origin") for text in allowed_origins]

    def host_allowed(self, host_header: str) -> bool:
        authority = parse_authority(host_header)
        if authority is None:
            return False
        return is_loopback(authority) or any(authority.same_host(h) for h in self._hosts)

    def origin_listed(self, origin: Origin) -> bool:
        return any(origin.same(allowed) for allowed in self._origins)

    def judge(
        self,
        *,
        method: str,
        headers: Mapping[str, list[str]],
        target: str = "/",
    ) -> Verdict:
        """The verdict for a request; ``headers`` maps lower-case names to all their values."""
        hosts = headers.get("host") or []
        if len(hosts) != 1 or not self.host_allowed(hosts[0]):
            return Verdict.BAD_HOST
        absolute = _absolute_form_authority(target)
        if absolute is not None and not self.host_allowed(absolute):
            return Verdict.BAD_HOST
        origins = headers.get("origin") or []
        if not origins:
            sites = headers.get("sec-fetch-site") or []
            if any(site.strip().lower() in _OTHER_SITE for site in sites):
                return Verdict.BAD_ORIGIN
            return Verdict.SERVE
        if len(origins) != 1:
            return Verdict.BAD_ORIGIN
        origin = parse_origin(origins[0])
        if origin is None:
            return Verdict.BAD_ORIGIN
        if _is_own(origin, hosts[0]):
            return Verdict.SERVE
        if not self.origin_listed(origin):
            return Verdict.BAD_ORIGIN
        if method == "OPTIONS" and headers.get("access-control-request-method"):
            return Verdict.PREFLIGHT
        return Verdict.SERVE_CORS


def _is_own(origin: Origin, host_header: str) -> bool:
    """The page was served by this service under the name the request uses."""
    host = parse_authority(host_header)
    if host is None:
        return False
    port = host.port or _DEFAULT_PORTS[origin.scheme]
    return origin.authority.same_host(host) and origin.port == port


def _absolute_form_authority(target: str) -> str | None:
    """The authority of an absolute-form request target (``GET http://name/path``)."""
    scheme, sep, rest = target.partition("://")
    if not sep or not scheme.isalpha():
        return None
    return rest.split("/", 1)[0].split("?", 1)[0]


def absolute_form_path(target: str) -> str | None:
    """The path of an absolute-form target, to route it like the origin form."""
    if _absolute_form_authority(target) is None:
        return None
    rest = target.partition("://")[2]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def host_entry(text: str) -> Authority | None:
    """A PARALLAX_ALLOWED_HOSTS entry: a name or address, an IPv6 one with or without brackets."""
    text = text.strip()
    if text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"
    return parse_authority(text)


def _must(value: _T | None, text: str, kind: str) -> _T:
    if value is None:
        raise ValueError(f"{text[:80]!r} is not a valid {kind}")
    return value
