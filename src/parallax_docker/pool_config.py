"""The warm pool's setting (``PARALLAX_POOL``): how many idle containers of which type."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from parallax_docker.models import AGENT_TYPES, AgentType

_POOL_PART_RE = re.compile(r"^(?P<type>[a-z]+)(?:=(?P<image>[^\s,=]+))?:(?P<size>[0-9]{1,3})\Z")


class PoolSize(BaseModel):
    """How many warm containers of one agent type (and which image; default: the type's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: AgentType
    size: int = Field(ge=0, le=64)
    image: str | None = Field(None, min_length=1, max_length=255)


def parse_pool(text: str) -> tuple[PoolSize, ...]:
    """``"custom:4,claude=parallax/agent-claude:dev:2"`` -> one PoolSize per type.

    ValueError names the part that does not parse (the value holds no secret).
    """
    sizes = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = _POOL_PART_RE.match(part)
        if match is None or match["type"] not in AGENT_TYPES:
            raise ValueError(
                f"{part[:80]!r} is not TYPE[=IMAGE]:COUNT with TYPE one of {', '.join(AGENT_TYPES)}"
            )
        sizes.append(
            PoolSize(type=match["type"], size=int(match["size"]), image=match["image"] or None)
        )
    return tuple(sizes)
