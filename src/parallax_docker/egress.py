"""Egress choices (pure): where an agent with ``egress`` set is attached, which proxy settings it
gets, and whether a host is on its allow-list. The gateway enforces them (docs/gateway.md).

- ``open`` (default): as the ``network`` field says (docs/security.md).
- ``none``: no network at all.
- ``models-only``: the internal network, where the only way out is the gateway; its proxy
  refuses every host.
- ``{"allow": [...]}``: the internal network; the gateway's proxy lets through the listed hosts
  (``name`` exactly, ``*.domain`` any name below the domain) and refuses the rest.
"""

from __future__ import annotations

from parallax_docker.errors import ValidationError
from parallax_docker.models import Egress, EgressAllow
from parallax_docker.security import NETWORK_INTERNAL, NETWORK_NONE, NetworkChoice, choose_network

# Agents reach the gateway's relay by this name on their own network: model calls on one port,
# the egress proxy on the other.
GATEWAY_ALIAS = "parallax-gateway"
GATEWAY_PORT = 8080
PROXY_PORT = 3128
PROXY_URL = f"http://{GATEWAY_ALIAS}:{PROXY_PORT}"


def allow_list(egress: Egress) -> tuple[str, ...] | None:
    """The hosts an agent may reach through the proxy; None when egress is not proxied."""
    if isinstance(egress, EgressAllow):
        return tuple(host.lower() for host in egress.allow)
    return () if egress == "models-only" else None


def plan_egress(
    egress: Egress, requested: str | None, default_network: str, *, gateway: bool
) -> tuple[NetworkChoice, dict[str, str]]:
    """The network for ``egress`` and the env that points the agent's tools at the proxy."""
    if egress == "open":
        return choose_network(requested, default_network), {}
    if egress == "none":
        if requested not in (None, NETWORK_NONE):
            raise ValidationError('egress "none" takes no network; leave network out')
        return choose_network(NETWORK_NONE, default_network), {}
    if not gateway:
        raise ValidationError(
            "this egress choice needs the model gateway, which is off",
            resolution="Start the service with PARALLAX_GATEWAY=true (docs/gateway.md), or "
            'spawn with egress "open" or "none".',
        )
    if requested not in (None, NETWORK_INTERNAL):
        raise ValidationError(
            'egress "models-only" or an allow-list puts the agent on the internal network',
            resolution='Leave network out (or give "internal").',
        )
    proxy = {name: PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    proxy.update({"NO_PROXY": GATEWAY_ALIAS, "no_proxy": GATEWAY_ALIAS})
    return choose_network(NETWORK_INTERNAL, default_network), proxy


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    name = host.lower().rstrip(".")
    for pattern in allowed:
        if pattern.startswith("*."):
            if name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
                return True
        elif name == pattern:
            return True
    return False
