"""Targets, verdicts and the Markdown tables written into docs/benchmarks.md."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import fleet_report
from bench.report_parts import Verdict, at_most, row, summary_row

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"


def _get(results: dict[str, Any], *keys: str) -> Any:
    value: Any = results
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    out: list[Verdict] = fleet_report.verdicts(results.get("fleet"))
    spawn_svc = _get(results, "spawn_stop", "spawn", "service", "median")
    spawn_raw = _get(results, "spawn_stop", "spawn", "raw", "median")
    if spawn_svc is not None and spawn_raw:
        pct = 100.0 * (spawn_svc / spawn_raw - 1.0)
        out.append(
            at_most(
                "Spawn-to-ready overhead (median)",
                "≤ 10% over raw",
                pct,
                10.0,
                "points",
                f"service {spawn_svc:.0f} ms vs raw {spawn_raw:.0f} ms: {pct:+.1f}%",
            )
        )
    stop_svc = _get(results, "spawn_stop", "stop", "service", "median")
    stop_raw = _get(results, "spawn_stop", "stop", "raw", "median")
    if stop_svc is not None and stop_raw:
        pct = 100.0 * (stop_svc / stop_raw - 1.0)
        out.append(
            at_most(
                "Stop overhead (median)",
                "≤ 10% over raw",
                pct,
                10.0,
                "points",
                f"service {stop_svc:.0f} ms vs raw {stop_raw:.0f} ms: {pct:+.1f}%",
            )
        )
    conc = results.get("concurrent")
    if conc:
        svc = conc["wall"]["service"]["median"]
        raw = conc["wall"]["raw"]["median"]
        errors = conc["errors"]["service"] + conc["errors"]["raw"]
        ratio = svc / raw if raw else math.inf
        verdict = at_most(
            f"{conc['count']} concurrent spawns, wall time",
            "≤ 1.2x raw, no errors",
            ratio,
            1.2,
            "x",
            f"service {svc:.0f} ms vs raw {raw:.0f} ms: {ratio:.2f}x; errors "
            f"{conc['errors']['service']} service, {conc['errors']['raw']} raw",
        )
        if errors:
            verdict = Verdict(verdict.target, verdict.goal, verdict.measured, False, "errors")
        out.append(verdict)
    reads = results.get("reads") or {}
    top = str(max((int(k) for k in reads), default=0))
    if top != "0":
        for kind, label in (("list", "GET /agents"), ("get", "GET /agents/{id}")):
            p50 = reads[top][kind]["median"]
            out.append(
                at_most(
                    f"{label} p50 with {top} agents",
                    "≤ 5 ms",
                    p50,
                    5.0,
                    "ms",
                    f"{p50:.2f} ms (p95 {reads[top][kind]['p95']:.2f} ms)",
                )
            )
    calls = _get(results, "engine_calls", "engine_calls_per_read")
    idle = _get(results, "engine_calls", "engine_calls_idle_per_s")
    if calls is not None:
        out.append(
            at_most(
                "Engine calls per list/get request",
                "0",
                calls,
                0.01,
                "calls",
                f"{calls:.3f} per request (background {idle}/s)",
            )
        )
    metrics = results.get("metrics") or {}
    if metrics:
        top_m = str(max(int(k) for k in metrics))
        p50 = metrics[top_m]["service"]["median"]
        engine = metrics[top_m]["engine_one_shot"]["median"]
        out.append(
            at_most(
                f"GET /agents/{{id}}/metrics p50 ({top_m} agents)",
                "≤ 100 ms",
                p50,
                100.0,
                "ms",
                f"{p50:.2f} ms (engine one-shot stats {engine:.0f} ms)",
            )
        )
    rss = results.get("rss_mib") or {}
    if rss:
        top_r = str(max(int(k) for k in rss))
        out.append(
            at_most(
                f"Service RSS with {top_r} agents", "≤ 150 MB", rss[top_r] * 1.048576, 150.0, "MB"
            )
        )
    pool = _get(results, "pool", "claim", "median")
    if pool is not None:
        cold = _get(results, "pool", "cold", "median")
        out.append(
            at_most(
                "Pool spawn-to-ready p50",
                "≤ 50 ms",
                pool,
                50.0,
                "ms",
                f"{pool:.0f} ms (p95 {results['pool']['claim']['p95']:.0f} ms); cold {cold:.0f} ms",
            )
        )
    return out


def _mark(verdict: Verdict) -> str:
    if verdict.passed is None:
        return "—"
    return "**pass**" if verdict.passed else "**FAIL**"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        BEGIN,
        "",
        f"Run `{results['run']}` on {results['date']} (commit `{m['git_commit']}`, "
        f"{results['duration_s']:.0f} s).",
        "",
        "| Machine | |",
        "|---|---|",
        f"| CPU | {m['cpu_model']}, {m['cores']} cores |",
        f"| Memory | {m['memory_bytes'] / 1024**3:.1f} GiB |",
        f"| OS, kernel | {m['os']}, Linux {m['kernel']} |",
        f"| Docker | {m['docker_version']} (API {m['docker_api']}), cgroup v{m['cgroup_version']} "
        f"({m['cgroup_driver']} driver), {m['storage_driver']} storage |",
        f"| Python | {m['python']} |",
        f"| Load | 1-min load {results['load_before'][0]:.2f} before, "
        f"{results['load_after'][0]:.2f} after; {m['containers_running_at_start']} other "
        "containers running at start |",
        f"| Busy processes at start | {'; '.join(results['busy_at_start'][:5]) or '—'} |",
        "| 1-min load as each phase started | "
        + (
            ", ".join(
                f"{name} {load[0]:.2f}"
                for name, load in (results.get("load_by_phase") or {}).items()
            )
            or "—"
        )
        + " |",
        "",
        "### Targets",
        "",
        "| Target | Goal | Measured | Result | How far |",
        "|---|---|---|---|---|",
    ]
    for verdict in results["verdicts"]:
        v = Verdict(**verdict)
        lines.append(row([v.target, v.goal, v.measured, _mark(v), v.margin or "—"]))
    lines += ["", "### Details", "", "| Measurement | p50 | p95 | n |", "|---|---|---|---|"]
    ss = results.get("spawn_stop") or {}
    for op in ("spawn", "stop"):
        for kind in ("service", "raw"):
            label = {
                ("spawn", "service"): "Spawn to ready: `POST /agents` (201)",
                ("spawn", "raw"): "Spawn to ready: raw create + start + readiness",
                ("stop", "service"): "Stop: `DELETE /agents/{id}` (204)",
                ("stop", "raw"): "Stop: raw stop + remove",
            }[(op, kind)]
            lines.append(summary_row(label, _get(ss, op, kind)))
    conc = results.get("concurrent")
    if conc:
        for kind in ("service", "raw"):
            lines.append(
                summary_row(f"{conc['count']} concurrent spawns, wall ({kind})", conc["wall"][kind])
            )
        for kind in ("service", "raw"):
            lines.append(
                summary_row(
                    f"{conc['count']} concurrent stops, wall ({kind})", conc["stop_wall"][kind]
                )
            )
    for count, r in sorted((results.get("reads") or {}).items(), key=lambda kv: int(kv[0])):
        lines.append(summary_row(f"`GET /agents` with {count} agents", r["list"]))
        lines.append(summary_row(f"`GET /agents/{{id}}` with {count} agents", r["get"]))
    for count, r in sorted((results.get("metrics") or {}).items(), key=lambda kv: int(kv[0])):
        lines.append(summary_row(f"`GET /agents/{{id}}/metrics` with {count} agents", r["service"]))
        lines.append(
            summary_row(f"engine one-shot stats with {count} agents", r["engine_one_shot"])
        )
        lines.append(
            summary_row(f"engine two-sample stats with {count} agents", r["engine_two_sample"])
        )
    ev = results.get("events")
    if ev:
        lines.append(summary_row("Container killed → API shows it (service)", ev["service"]))
        lines.append(summary_row("Container killed → engine event arrives", ev["engine_event"]))
        if ev.get("service_after_engine_event"):
            lines.append(
                summary_row(
                    "Engine event → API shows it (the service's own delay, with the 2 ms poll)",
                    ev["service_after_engine_event"],
                )
            )
    rd = results.get("readiness")
    if rd:
        lines.append(
            summary_row(
                f"Start → ready, exec probe (HEALTHCHECK every {rd['interval_s']:g} s)",
                rd["exec_probe"],
            )
        )
        lines.append(
            summary_row(
                f"Start → ready, Docker health status (every {rd['interval_s']:g} s)",
                rd["docker_health"],
            )
        )
    pool = results.get("pool")
    if pool:
        for name, section in (("", pool), ("agent-base ", pool.get("base_image"))):
            if not section:
                continue
            lines.append(
                summary_row(f"Pool {name}(`{section['pool']}`): spawn claimed", section["claim"])
            )
            lines.append(
                summary_row(f"Pool {name}service: cold spawn (labelled request)", section["cold"])
            )
            for step, summary in section["steps"].items():
                lines.append(summary_row(f"Pool {name}claim, {step} (since claim start)", summary))
    lines += fleet_report.markdown(results.get("fleet"))
    rss = results.get("rss_mib") or {}
    if rss:
        lines += ["", "| Service RSS | MiB |", "|---|---|"]
        for count, mib in sorted(rss.items(), key=lambda kv: int(kv[0])):
            lines.append(row([f"{count} agents", f"{mib:.1f}"]))
    if pool:
        lines += [""]
        for name, section in (("", pool), ("agent-base ", pool.get("base_image"))):
            if section:
                lines.append(
                    f"Pool {name}`{section['pool']}`: an idle pooled container used "
                    f"{section['idle_cpu_percent_of_a_core']}% of a core while waiting; "
                    f"{section['misses']} claim(s) missed the pool; "
                    f"{section['containers_left_after_service_stop']} container(s) of the pool's "
                    "instance were left after the service stopped."
                )
    calls = results.get("engine_calls")
    if calls:
        lines += [
            "",
            f"Engine calls seen by a counting proxy while a second service answered "
            f"{calls['requests']} list/get requests: "
            f"`{calls['engine_calls_during_reads'] or {}}` "
            f"(background {calls['engine_calls_idle_per_s']} calls/s: events stream, janitor); "
            f"that service adopted the agents and synced in "
            f"{calls['observer_start_and_adopt_s']} s with "
            f"{calls.get('engine_calls_to_start_and_adopt', '?')} engine calls (the proxy at "
            "work: a list, an inspect per container, network and info calls).",
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_docs(path: Path, results: dict[str, Any]) -> None:
    block = markdown(results)
    text = path.read_text() if path.exists() else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def as_json_verdicts(items: list[Verdict]) -> list[dict[str, Any]]:
    return [asdict(v) for v in items]
