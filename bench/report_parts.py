"""Pieces of the benchmark's report shared by its sections: verdicts and table rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    target: str
    goal: str
    measured: str
    passed: bool | None  # None: not measured in this run
    margin: str


def at_most(
    name: str, goal: str, value: float | None, limit: float, unit: str, measured: str = ""
) -> Verdict:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Verdict(name, goal, "not measured", None, "")
    passed = value <= limit
    if passed:
        margin = f"{limit - value:.3g} {unit} under"
    else:
        margin = f"{value - limit:.3g} {unit} over ({value / limit:.2f}x the limit)"
    return Verdict(name, goal, measured or f"{value:.3g} {unit}", passed, margin)


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def summary_row(label: str, summary: dict[str, Any] | None, unit: str = "ms") -> str:
    if not summary or not summary.get("n"):
        return row([label, "—", "—", "—"])
    return row(
        [
            label,
            f"{summary['median']:.1f} {unit}",
            f"{summary['p95']:.1f} {unit}",
            str(summary["n"]),
        ]
    )
