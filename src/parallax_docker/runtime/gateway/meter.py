"""Model use counted by the gateway: requests, input and output tokens and cost, per agent, per
execution and per thread, and by provider; the price table that turns tokens into dollars.

Counts live in the service's memory and are kept on disk by ``ledger.py`` (docs/gateway.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from parallax_docker.errors import ConfigError
from parallax_docker.models import Budget
from parallax_docker.runtime.gateway.usage import Usage

# USD per million tokens (input, output), by model-name prefix; the longest prefix wins.
# Operators override or extend it with PARALLAX_GATEWAY_PRICES (docs/gateway.md).
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-opus": (15.0, 75.0),
    "claude-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-haiku": (1.0, 5.0),
    "gpt-5": (1.25, 10.0),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4o": (2.5, 10.0),
    "o3": (2.0, 8.0),
    "o4-mini": (1.1, 4.4),
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.3, 2.5),
}


def price_table(override: str | None) -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_PRICES)
    if override is None:
        return table
    try:
        parsed = json.loads(override)
        for prefix, pair in parsed.items():
            tokens_in, tokens_out = (float(value) for value in pair)
            if tokens_in < 0 or tokens_out < 0:
                raise ValueError("negative price")
            table[str(prefix)] = (tokens_in, tokens_out)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(
            "PARALLAX_GATEWAY_PRICES is not valid",
            resolution='Give JSON like {"claude-sonnet": [3.0, 15.0]}: USD per million input '
            "and output tokens, by model-name prefix.",
        ) from exc
    return table


def cost_of(usage: Usage, table: dict[str, tuple[float, float]]) -> float:
    model = usage.model or ""
    matches = [prefix for prefix in table if model.startswith(prefix)]
    if not matches:
        return 0.0
    tokens_in, tokens_out = table[max(matches, key=len)]
    return (usage.input_tokens * tokens_in + usage.output_tokens * tokens_out) / 1_000_000


@dataclass
class Tally:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    refused: int = 0
    by_provider: dict[str, Tally] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, usage: Usage, cost: float) -> None:
        self.requests += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cost_usd += cost

    def dump(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "refused": self.refused,
            "by_provider": {name: tally.dump() for name, tally in self.by_provider.items()},
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> Tally:
        return cls(
            int(data.get("requests", 0)),
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            float(data.get("cost_usd", 0.0)),
            int(data.get("refused", 0)),
            {name: cls.restore(part) for name, part in dict(data.get("by_provider", {})).items()},
        )

    def view(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "costUsd": round(self.cost_usd, 6),
            "refused": self.refused,
        }


@dataclass(frozen=True)
class Caller:
    """Who made a model call: the agent, its execution and its thread (when it has them)."""

    agent_id: str
    execution_id: str | None = None
    thread_id: str | None = None
    # The agent's budget now: its spawn's, or the raise PATCHed since.
    budget: Budget | None = None


class Meter:
    def __init__(self, prices: dict[str, tuple[float, float]]) -> None:
        self._prices = prices
        self.agents: dict[str, Tally] = {}
        self.executions: dict[str, Tally] = {}
        self.threads: dict[str, Tally] = {}
        # Egress refusals and refused tokens, by reason (bounded: a few fixed reasons).
        self.refusals: dict[str, int] = {}
        # Bumped at every change, so the ledger knows when there is something to write.
        self.changes = 0

    def _tallies(self, caller: Caller) -> Iterator[Tally]:
        yield self.agents.setdefault(caller.agent_id, Tally())
        if caller.execution_id is not None:
            yield self.executions.setdefault(caller.execution_id, Tally())
        if caller.thread_id is not None:
            yield self.threads.setdefault(caller.thread_id, Tally())

    def record(self, caller: Caller, provider: str, usage: Usage) -> float:
        cost = cost_of(usage, self._prices)
        self.changes += 1
        for tally in self._tallies(caller):
            tally.add(usage, cost)
            tally.by_provider.setdefault(provider, Tally()).add(usage, cost)
        return cost

    def refused(self, reason: str, caller: Caller | None = None) -> None:
        self.refusals[reason] = self.refusals.get(reason, 0) + 1
        self.changes += 1
        if caller is not None:
            for tally in self._tallies(caller):
                tally.refused += 1

    def of_agent(self, agent_id: str) -> Tally:
        return self.agents.get(agent_id) or Tally()

    def of_execution(self, execution_id: str) -> Tally:
        return self.executions.get(execution_id) or Tally()

    def forget(self, agent_id: str) -> None:
        self.agents.pop(agent_id, None)
        self.changes += 1
