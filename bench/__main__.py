"""The benchmark: ``.venv/bin/python -m bench`` (see docs/benchmarks.md).

It starts its own service process (own instance, network, port, secrets and state directories),
measures it side by side with the raw Docker Engine API on the same image and limits, prints the
results, writes ``bench/results/latest.json`` and the tables of ``docs/benchmarks.md``, and
removes every container, network and directory it made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import machine, report, scenarios
from bench import pool as pool_bench
from bench.engine import RawEngine
from bench.fleet import Fleet
from bench.image import ensure_bench_image
from bench.service import BenchService

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--trials", type=int, default=20, help="sequential spawn/stop trials")
    parser.add_argument("--concurrent", type=int, default=50, help="spawns started at once")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of concurrent spawns")
    parser.add_argument(
        "--agents", default="10,100,300", help="agent counts for the read and RSS measurements"
    )
    parser.add_argument("--pool-trials", type=int, default=20, help="claims from the warm pool")
    parser.add_argument(
        "--fleet", type=int, default=300, help="agents (and plain containers) in the fleet phase"
    )
    parser.add_argument(
        "--fleet-window", type=float, default=60, help="seconds of the fleet's CPU window"
    )
    parser.add_argument(
        "--fleet-settle", type=float, default=30, help="seconds a fleet settles before its window"
    )
    parser.add_argument(
        "--image-tag",
        default=os.environ.get("PARALLAX_IMAGE_TAG", "latest"),
        help="tag of the project's images for the fleet phase",
    )
    parser.add_argument("--no-pool", action="store_true", help="skip the warm-pool measurements")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset: fleet,spawn,concurrent,readiness,reads,calls,events,pool",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (few trials, 10 and 30 agents)"
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=None,
        help="wait (up to --load-wait s) until the 1-min load average is below this",
    )
    parser.add_argument("--load-wait", type=float, default=600)
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--keep", action="store_true", help="also copy the JSON to bench/results/<date>.json"
    )
    args = parser.parse_args(argv)
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    if args.quick:
        args.trials, args.rounds, args.agents, args.pool_trials = 5, 1, "10,30", 5
        args.concurrent = min(args.concurrent, 20)
        args.fleet, args.fleet_window, args.fleet_settle = 30, 20, 10
    return args


async def wait_for_low_load(limit: float, max_wait_s: float) -> None:
    deadline = time.monotonic() + max_wait_s
    while machine.load_average()[0] >= limit and time.monotonic() < deadline:
        log(f"1-min load {machine.load_average()[0]:.2f} >= {limit}; waiting...")
        await asyncio.sleep(30)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.max_load is not None:
        await wait_for_low_load(args.max_load, args.load_wait)
    run_id = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix=f"pbench-{run_id}-"))
    instance = f"pbench-{run_id}"
    network = f"pbench-{run_id}-net"
    counts = [int(c) for c in args.agents.split(",") if c.strip()]
    started = time.monotonic()
    results: dict[str, Any] = {
        "run": run_id,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": machine.load_average(),
        "busy_at_start": machine.busy_processes(),
        "parameters": {
            "trials": args.trials,
            "concurrent": args.concurrent,
            "rounds": args.rounds,
            "agents": counts,
            "timed_limits": {"memory": "64m", "cpu": 0.5},
            "bulk_limits": {"memory": "32m", "cpu": 0.1},
        },
    }
    log(f"bench run {run_id}: image, engine, service (instance {instance})")
    image_ref = ensure_bench_image()
    raw = RawEngine()
    results["machine"] = machine.describe(await raw.version(), await raw.info())
    image = await raw.image(image_ref)
    secrets_dir = workdir / "secrets"
    env = {
        "DOCKER_NETWORK": network,
        "PARALLAX_INSTANCE": instance,
        "PARALLAX_SECRETS_DIR": str(secrets_dir),
        "PARALLAX_STATE_DIR": str(workdir / "state"),
        "LOG_LEVEL": "WARNING",
        "PARALLAX_READY_TIMEOUT_S": "60",
        # 300 agents at 32m/0.1 CPU on a small machine: admission must let them in.
        "PARALLAX_MEMORY_OVERCOMMIT": "4",
        "PARALLAX_CPU_OVERCOMMIT": "100",
    }
    service = BenchService(env, workdir / "service.log")
    try:
        await raw.ensure_network(
            network, {"parallax.managed": "true", "parallax.instance": instance}
        )
        service.start()
        async with httpx.AsyncClient(
            base_url=service.url,
            timeout=300,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        ) as api:
            ctx = scenarios.Context(
                run=run_id,
                raw=raw,
                api=api,
                service=service,
                image=image,
                network=network,
                instance=instance,
                service_env=env,
                workdir=workdir,
                log=log,
                trials=args.trials,
            )
            await api.get("/agents")
            rss: dict[str, float] = {"0": await scenarios.rss_mib(ctx)}
            log(f"service RSS with 0 agents: {rss['0']:.1f} MiB")

            phases: dict[str, tuple[float, float, float]] = {}
            results["load_by_phase"] = phases

            def wanted(name: str) -> bool:
                chosen = not args.only or name in args.only
                if chosen:
                    # The 1-min load average as each phase starts: what else was running.
                    phases[name] = machine.load_average()
                return chosen

            if wanted("fleet"):
                log(f"idle fleet: {args.fleet} real agents vs {args.fleet} plain containers")
                results["fleet"] = await Fleet(
                    workdir=workdir,
                    run=run_id,
                    tag=args.image_tag,
                    count=args.fleet,
                    window_s=args.fleet_window,
                    settle_s=args.fleet_settle,
                    trials=5,
                    log=log,
                ).measure()
                phases["fleet-end"] = machine.load_average()

            if wanted("spawn"):
                log(f"spawn and stop: {args.trials} trials each, service and raw interleaved")
                results["spawn_stop"] = await scenarios.spawn_and_stop(ctx)
                _print_pair(results["spawn_stop"], "spawn")
                _print_pair(results["spawn_stop"], "stop")

            if wanted("concurrent"):
                log(f"{args.concurrent} concurrent spawns: {args.rounds} rounds each")
                results["concurrent"] = await scenarios.concurrent_spawns(
                    ctx, args.concurrent, args.rounds
                )

            if wanted("readiness"):
                log("readiness: exec probe vs Docker's health status")
                results["readiness"] = await scenarios.readiness_choice(ctx)

            if wanted("pool") and not args.no_pool:
                # Before the agents for the reads exist: claims and cold spawns are timed on an
                # engine as quiet as the one the spawn trials had.
                log("warm pool")
                results["pool"] = await pool_bench.measure(
                    raw, image, workdir, run_id, env, args.pool_trials, log
                )

            if wanted("reads") or wanted("calls") or wanted("events"):
                results["reads"] = {}
                results["metrics"] = {}
                for count in counts:
                    await scenarios.populate(ctx, count)
                    await asyncio.sleep(2.0)
                    reads = results["reads"][str(count)] = await scenarios.reads(ctx)
                    log(
                        f"  list p50 {reads['list']['median']:.2f} ms, "
                        f"get p50 {reads['get']['median']:.2f} ms"
                    )
                    if count in (counts[0], counts[-1]):
                        metrics = results["metrics"][str(count)] = await scenarios.metrics(ctx)
                        log(f"  metrics p50 {metrics['service']['median']:.2f} ms")
                    rss[str(count)] = await scenarios.rss_mib(ctx)
                    log(f"  service RSS {rss[str(count)]:.1f} MiB")
                results["rss_mib"] = rss

            if wanted("calls"):
                log("engine calls per read (a second service behind a counting proxy)")
                results["engine_calls"] = await scenarios.engine_calls_per_read(ctx)
                log(f"  {results['engine_calls']}")

            if wanted("events"):
                log("events to status: kill containers through the engine, poll the API")
                results["events"] = await scenarios.events_to_status(ctx)
                log(f"  service p50 {results['events']['service']['median']:.1f} ms")

    finally:
        # Before the clean-up, which keeps the engine busy removing what the run made.
        results["load_after"] = machine.load_average()
        log("cleaning up")
        with contextlib.suppress(Exception):
            removed = await raw.remove_labelled(f"parallax.instance={instance}", concurrency=8)
            removed += await raw.remove_labelled(f"parallax.bench.run={run_id}")
            for suffix in ("pool", "poolbase"):
                removed += await raw.remove_labelled(f"parallax.instance={instance}-{suffix}")
            log(f"  removed {removed} containers")
        service.stop()
        with contextlib.suppress(Exception):
            await raw.remove_labelled(f"parallax.instance={instance}")
        for attempt in range(10):
            try:
                await raw.remove_network(network)
                break
            except Exception as exc:
                # Endpoints of containers just removed can linger a moment in the engine.
                if attempt == 9:
                    log(f"  could not remove network {network}: {exc}")
                await asyncio.sleep(1.0)
        await raw.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results["duration_s"] = time.monotonic() - started
    results["verdicts"] = report.as_json_verdicts(report.verdicts(results))
    return results


def _print_pair(section: dict[str, Any], op: str) -> None:
    svc = section[op]["service"]
    raw = section[op]["raw"]
    ratio = svc["median"] / raw["median"] if raw["median"] else float("inf")
    log(
        f"  {op}: service p50 {svc['median']:.1f} ms p95 {svc['p95']:.1f} ms | raw p50 "
        f"{raw['median']:.1f} ms p95 {raw['p95']:.1f} ms | ratio {ratio:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    results = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    latest.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.keep:
        shutil.copy(latest, RESULTS / f"{datetime.now(UTC).strftime('%Y-%m-%d')}.json")
    if not args.no_docs:
        report.write_docs(ROOT / "docs" / "benchmarks.md", results)
    log("")
    log(report.markdown(results))
    failed = [v for v in results["verdicts"] if v["passed"] is False]
    log(f"\n{len(results['verdicts']) - len(failed)} of {len(results['verdicts'])} targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
