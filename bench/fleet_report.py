"""The fleet phase's targets and tables (bench/fleet.py), for bench/report.py."""

from __future__ import annotations

import math
from typing import Any

from bench.report_parts import Verdict, at_most, row, summary_row

PARTS = ("dockerd", "containerd", "shims", "containers", "service", "total")


def verdicts(fleet: dict[str, Any] | None) -> list[Verdict]:
    if not fleet:
        return []
    count = fleet["count"]
    agents = fleet["agents"]
    plain = fleet["plain"]
    out: list[Verdict] = []
    ratio = fleet.get("idle_ratio")
    out.append(
        at_most(
            f"Idle cost: {count} real agents vs {count} plain containers, "
            f"{fleet['window_s']:g} s of CPU",
            "≤ 1.5x",
            ratio if ratio is not None else math.nan,
            1.5,
            "x",
            f"{agents['cpu']['total']:.2f} s vs {plain['cpu']['total']:.2f} s: {ratio}x",
        )
    )
    refused = agents["refused_count"]
    out.append(
        at_most(
            f"{count} agents at the default limits (512m, 0.5 CPU) admitted",
            "all, no RESOURCE_LIMIT",
            float(refused),
            0.0,
            "refused",
            f"{agents['spawned']} admitted, {refused} refused; {agents['healthy']} healthy",
        )
    )
    for kind, label in (("list", "GET /agents"), ("get", "GET /agents/{id}")):
        p50 = agents["reads"][kind]["median"]
        out.append(
            at_most(
                f"{label} p50 with {count} real agents",
                "≤ 5 ms",
                p50,
                5.0,
                "ms",
                f"{p50:.2f} ms (p95 {agents['reads'][kind]['p95']:.2f} ms)",
            )
        )
    metrics = agents["metrics"]["median"]
    out.append(
        at_most(
            f"GET /agents/{{id}}/metrics p50 with {count} real agents",
            "≤ 100 ms",
            metrics,
            100.0,
            "ms",
        )
    )
    out.append(
        at_most(
            f"Service RSS with {count} real agents",
            "≤ 150 MB",
            agents["rss_mib"] * 1.048576,
            150.0,
            "MB",
        )
    )
    first = agents["spawn_first"]["median"]
    following = agents["spawn_next"]["median"]
    out.append(
        at_most(
            f"Spawn of agent {count + 1} vs the first (p50 of {agents['spawn_next']['n']})",
            "≤ 1.2x",
            following / first if first else math.nan,
            1.2,
            "x",
            f"{following:.0f} ms vs {first:.0f} ms: {following / first:.2f}x",
        )
    )
    return out


def markdown(fleet: dict[str, Any] | None) -> list[str]:
    if not fleet:
        return []
    agents = fleet["agents"]
    plain = fleet["plain"]
    count = fleet["count"]
    lines = [
        "",
        f"Idle fleet on a private engine ({count} of each, CPU seconds over "
        f"{plain['cpu']['window_s']:.0f} s after a settle):",
        "",
        "| Part | Plain containers | Agents |",
        "|---|---|---|",
    ]
    for part in PARTS:
        lines.append(row([part, f"{plain['cpu'][part]:.2f}", f"{agents['cpu'][part]:.2f}"]))
    lines += [
        "",
        "| Measurement | p50 | p95 | n |",
        "|---|---|---|---|",
        summary_row("Spawn to ready of a lone echo agent", agents["spawn_first"]),
        summary_row(
            f"Spawn to ready of one more echo agent ({count} others)", agents["spawn_next"]
        ),
        summary_row(f"`GET /agents` with {count} real agents", agents["reads"]["list"]),
        summary_row(f"`GET /agents/{{id}}` with {count} real agents", agents["reads"]["get"]),
        summary_row(f"`GET /agents/{{id}}/metrics` with {count} real agents", agents["metrics"]),
        "",
        f"Fleet phase: images copied into the private engine in {fleet['image_copy_s']} s; "
        f"{plain['running']} plain containers; {agents['spawned']} agents admitted "
        f"({agents['refused_count']} refused), {agents['healthy']} healthy before the window; "
        f"service RSS {agents['rss_mib']} MiB; the host had "
        f"{agents['memory_available_mib']} MiB available with the agents running; the phase took "
        f"{fleet['duration_s']:.0f} s.",
    ]
    return lines
