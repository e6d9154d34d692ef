"""The model gateway's settings (docs/gateway.md), a part of ``config.Settings``: read from the
environment with the rest, as ``PARALLAX_GATEWAY*``."""

from __future__ import annotations

from pydantic import BaseModel, Field

# One entry of PARALLAX_GATEWAY_EGRESS_HOSTS: name=IP address.
_HOST_ENTRY = r"[A-Za-z0-9.-]+=[0-9A-Fa-f.:]+"


class GatewaySettings(BaseModel):
    # Provider keys stay in the service; agents get a token (off: as before).
    gateway: bool = Field(False)
    gateway_anthropic_url: str = Field("https://api.anthropic.com", pattern=r"^https?://")
    gateway_openai_url: str = Field("https://api.openai.com", pattern=r"^https?://")
    gateway_gemini_url: str = Field(
        "https://generativelanguage.googleapis.com", pattern=r"^https?://"
    )
    # Operators' prices, JSON {"model-prefix": [usd per 1M input, usd per 1M output], ...}.
    gateway_prices: str | None = Field(None, max_length=65536)
    # Where the egress proxy dials a name, "name=address,..." (before the host's resolver).
    gateway_egress_hosts: str | None = Field(
        None,
        max_length=65536,
        pattern=rf"^{_HOST_ENTRY}(,{_HOST_ENTRY})*$",
    )
