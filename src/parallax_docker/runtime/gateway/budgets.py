"""Budgets: how much model use an agent, and an execution, may make through the gateway.

An agent's budget comes from its spawn (``resources.budget``, kept in its labels); a raise by
``PATCH /agents/{id}/budget`` and an execution's budget (``PUT /executions/{id}/budget``) are
kept here, one small JSON file each, so they outlive a restart of the service.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from parallax_docker.models import Budget
from parallax_docker.runtime.gateway.meter import Tally
from parallax_docker.runtime.private_files import write_private


@dataclass(frozen=True)
class Overrun:
    """Which budget a caller has used up: ``scope`` agent or execution, the limit reached."""

    scope: str
    limit: str
    allowed: float
    used: float


def overrun(budget: Budget | None, tally: Tally, scope: str) -> Overrun | None:
    if budget is None:
        return None
    checks = (
        ("maxTokens", budget.max_tokens, tally.tokens),
        ("maxCostUsd", budget.max_cost_usd, tally.cost_usd),
        ("maxRequests", budget.max_requests, tally.requests),
    )
    for name, allowed, used in checks:
        if allowed is not None and used >= allowed:
            return Overrun(scope, name, float(allowed), float(used))
    return None


class BudgetBook:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._cache: dict[str, Budget | None] = {}

    def _path(self, scope: str, name: str) -> Path:
        return self._folder / f"{scope}-{name}.json"

    def set(self, scope: str, name: str, budget: Budget) -> None:
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self._path(scope, name), budget.model_dump_json(exclude_none=True).encode())
        self._cache[f"{scope}-{name}"] = budget

    def get(self, scope: str, name: str) -> Budget | None:
        key = f"{scope}-{name}"
        if key not in self._cache:
            try:
                self._cache[key] = Budget.model_validate_json(self._path(scope, name).read_text())
            except (OSError, ValueError):
                self._cache[key] = None
        return self._cache[key]

    def remove(self, scope: str, name: str) -> None:
        self._cache.pop(f"{scope}-{name}", None)
        with contextlib.suppress(FileNotFoundError):
            self._path(scope, name).unlink()
