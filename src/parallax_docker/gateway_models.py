"""The model gateway's request and response models (docs/gateway.md): budgets, egress choices,
counted model use. Kept apart from models.py, which imports them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_serializer,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Budget(_Strict):
    """Model use an agent (or an execution) may make through the gateway (docs/gateway.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    max_tokens: StrictInt | None = Field(None, alias="maxTokens", ge=1, le=10**12)
    max_cost_usd: StrictFloat | StrictInt | None = Field(None, alias="maxCostUsd", gt=0, le=10**7)
    max_requests: StrictInt | None = Field(None, alias="maxRequests", ge=1, le=10**9)

    @model_serializer(mode="wrap")
    def _only_limits_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A budget shows the limits it has, not the ones it lacks.
        return {key: value for key, value in handler(self).items() if value is not None}


MAX_EGRESS_HOSTS = 256
# A host name, or "*." and a domain (any name below it).
EgressHost = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=253,
        pattern=r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$",
    ),
]


class EgressAllow(_Strict):
    """Only these hosts, through the gateway's proxy (docs/gateway.md)."""

    allow: list[EgressHost] = Field(..., max_length=MAX_EGRESS_HOSTS)


# "open" (the default: as the network allows), "none" (no network), "models-only" (the
# gateway and nothing else), or an allow-list.
Egress = Literal["open", "none", "models-only"] | EgressAllow


class ModelCounts(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    requests: int
    input_tokens: int = Field(alias="inputTokens")
    output_tokens: int = Field(alias="outputTokens")
    cost_usd: float = Field(alias="costUsd")
    refused: int = Field(description="model calls the gateway refused (budget, token, key)")


class ModelUsage(ModelCounts):
    """Model use counted by the gateway from the providers' answers (docs/gateway.md)."""

    by_provider: dict[str, ModelCounts] = Field(default_factory=dict, alias="byProvider")
    budget: Budget | None = None
    budget_exceeded: bool = Field(False, alias="budgetExceeded")
