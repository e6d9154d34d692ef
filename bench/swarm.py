"""The Swarm benchmark: ``.venv/bin/python -m bench.swarm`` (see docs/benchmarks.md#swarm).

It makes the test suite's 3-node swarm (tests/support/swarm.py) and, beside it, one private
engine of the same dockerd build configured the same way (tests/support/dockerd.py): the
single-engine baseline runs on an engine as idle as the swarm's, not on the machine's shared one.
One service runs on each (``PARALLAX_BACKEND=swarm`` on the swarm's first manager, the default
backend on the single engine), and it measures:

- spawn and stop latency, one agent at a time, swarm and single engine alternating;
- 100 agents over the 3 nodes: spawned with a bounded concurrency (8 at a time), how they
  spread, the list and get latency with all of them running, and stopping them all.

It prints the results and writes ``bench/results/swarm-latest.json`` (``--keep``: a dated copy
too), then takes down everything it made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.dockerd import PrivateDockerd
from tests.support.swarm import SwarmCluster, reap_stale

from bench import machine
from bench.image import ensure_bench_image
from bench.service import BenchService
from bench.stats import Summary, ratio

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LIMITS = {"memory": "32m", "cpu": 0.05}


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.swarm", description=__doc__)
    parser.add_argument("--trials", type=int, default=20, help="sequential spawn/stop trials")
    parser.add_argument("--agents", type=int, default=100, help="agents spread over the nodes")
    parser.add_argument("--concurrency", type=int, default=8, help="spawns in flight at once")
    parser.add_argument("--keep", action="store_true", help="also write a dated copy")
    return parser.parse_args(argv)


def service_env(workdir: Path, name: str, run: str) -> dict[str, str]:
    return {
        "DOCKER_NETWORK": f"pbench-{run}-net",
        "PARALLAX_INSTANCE": f"pbench-{run}-{name}",
        "PARALLAX_SECRETS_DIR": str(workdir / f"secrets-{name}"),
        "PARALLAX_STATE_DIR": str(workdir / f"state-{name}"),
        "LOG_LEVEL": "WARNING",
        "PARALLAX_READY_TIMEOUT_S": "120",
        "PARALLAX_SWARM_PLACEMENT_TIMEOUT_S": "120",
        # 100 agents at 32m/0.05 CPU on a small machine: admission must let them in.
        "PARALLAX_MEMORY_OVERCOMMIT": "4",
        "PARALLAX_CPU_OVERCOMMIT": "100",
    }


async def timed(action: Awaitable[httpx.Response], status: int) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await action
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return (time.perf_counter() - started) * 1000.0, response


def body(image: str, agent_id: str) -> dict[str, Any]:
    return {
        "id": agent_id,
        "name": f"n-{agent_id}",
        "type": "custom",
        "image": image,
        "resources": LIMITS,
    }


async def spawn_latency(
    apis: dict[str, httpx.AsyncClient], image: str, trials: int, warmup: int = 3
) -> dict[str, Any]:
    """Spawn then stop one agent, the platforms alternating (their order flips every trial)."""
    spawn: dict[str, list[float]] = {name: [] for name in apis}
    stop: dict[str, list[float]] = {name: [] for name in apis}
    names = list(apis)
    for trial in range(warmup + trials):
        order = names if trial % 2 == 0 else names[::-1]
        for name in order:
            agent_id = f"lat-{name}-{trial}"
            spawned, _ = await timed(apis[name].post("/agents", json=body(image, agent_id)), 201)
            stopped, _ = await timed(apis[name].delete(f"/agents/{agent_id}"), 204)
            if trial >= warmup:
                spawn[name].append(spawned)
                stop[name].append(stopped)
    result: dict[str, Any] = {
        name: {"spawn": Summary.of(spawn[name]).as_dict(), "stop": Summary.of(stop[name]).as_dict()}
        for name in names
    }
    result["spawn_ratio_p50"] = round(
        ratio(Summary.of(spawn["swarm"]).median, Summary.of(spawn["single"]).median), 2
    )
    return result


async def bounded(count: int, limit: int, one: Callable[[int], Awaitable[float]]) -> list[float]:
    gate = asyncio.Semaphore(limit)

    async def run(index: int) -> float:
        async with gate:
            return await one(index)

    return list(await asyncio.gather(*(run(i) for i in range(count))))


async def many_agents(
    api: httpx.AsyncClient, image: str, count: int, concurrency: int
) -> dict[str, Any]:
    """``count`` agents over the nodes, ``concurrency`` spawns at a time; reads; then stops."""
    handles: dict[str, dict[str, Any]] = {}

    async def spawn(index: int) -> float:
        agent_id = f"many-{index}"
        elapsed, response = await timed(api.post("/agents", json=body(image, agent_id)), 201)
        handles[agent_id] = response.json()
        return elapsed

    started = time.perf_counter()
    spawns = await bounded(count, concurrency, spawn)
    spawn_wall_s = time.perf_counter() - started
    per_node = Counter(h["node"] for h in handles.values())
    lists = [(await timed(api.get("/agents"), 200))[0] for _ in range(50)]
    ids = sorted(handles)
    gets = [(await timed(api.get(f"/agents/{ids[i % count]}"), 200))[0] for i in range(100)]
    health, _ = await timed(api.get("/health"), 200)

    async def stop(index: int) -> float:
        return (await timed(api.delete(f"/agents/many-{index}"), 204))[0]

    started = time.perf_counter()
    stops = await bounded(count, concurrency, stop)
    return {
        "agents": count,
        "concurrency": concurrency,
        "spawn": Summary.of(spawns).as_dict(),
        "spawn_wall_s": round(spawn_wall_s, 2),
        "per_node": dict(sorted(per_node.items())),
        "list": Summary.of(lists).as_dict(),
        "get": Summary.of(gets).as_dict(),
        "health_ms": round(health, 1),
        "stop": Summary.of(stops).as_dict(),
        "stop_wall_s": round(time.perf_counter() - started, 2),
    }


async def measure(
    args: argparse.Namespace, image: str, swarm: SwarmCluster, single: str, workdir: Path, run: str
) -> dict[str, Any]:
    services = {
        "single": BenchService(
            {**service_env(workdir, "single", run), "DOCKER_SOCKET": single}, workdir / "single.log"
        ),
        "swarm": BenchService(
            {**service_env(workdir, "swarm", run), **swarm.service_env()}, workdir / "swarm.log"
        ),
    }
    try:
        for service in services.values():
            service.start()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with (
            httpx.AsyncClient(base_url=services["single"].url, timeout=300, limits=limits) as one,
            httpx.AsyncClient(base_url=services["swarm"].url, timeout=300, limits=limits) as many,
        ):
            log(f"spawn latency: {args.trials} trials on each, alternating")
            latency = await spawn_latency({"single": one, "swarm": many}, image, args.trials)
            log(f"{args.agents} agents over {len(swarm.nodes)} nodes, {args.concurrency} at a time")
            spread = await many_agents(many, image, args.agents, args.concurrency)
        return {"latency": latency, "many": spread}
    finally:
        for service in services.values():
            service.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix=f"pbench-swarm-{run_id}-"))
    image = ensure_bench_image()
    results: dict[str, Any] = {
        "run": run_id,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": machine.load_average(),
        "parameters": {
            "trials": args.trials,
            "agents": args.agents,
            "concurrency": args.concurrency,
            "limits": LIMITS,
        },
    }
    reap_stale()
    swarm = SwarmCluster(f"b{run_id[:5]}")
    single = PrivateDockerd(workdir / "single")
    (workdir / "single").mkdir()
    try:
        log("making the 3-node swarm and the single engine")
        swarm.create()
        swarm.load_images(image)
        single.start()
        single.load_images(image)
        results.update(await measure(args, image, swarm, str(single.socket), workdir, run_id))
    finally:
        single.destroy()
        swarm.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_after"] = machine.load_average()
    return results


def print_results(results: dict[str, Any]) -> None:
    latency, many = results["latency"], results["many"]
    for name in ("single", "swarm"):
        log(
            f"{name:>6}: spawn {_text(latency[name]['spawn'])}; stop {_text(latency[name]['stop'])}"
        )
    log(f"swarm spawn p50 is {latency['spawn_ratio_p50']}x the single engine's")
    log(
        f"{many['agents']} agents: spawned in {many['spawn_wall_s']} s ({_text(many['spawn'])} "
        f"each), per node {many['per_node']}"
    )
    log(
        f"with them all: list {_text(many['list'])}, get {_text(many['get'])}; "
        f"stopped in {many['stop_wall_s']} s"
    )


def _text(summary: dict[str, Any]) -> str:
    return f"p50 {summary['median']:.0f} ms, p95 {summary['p95']:.0f} ms"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results = asyncio.run(run(args))
    print_results(results)
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (RESULTS / "swarm-latest.json").write_text(text)
    if args.keep:
        (RESULTS / f"swarm-{datetime.now(UTC).strftime('%Y-%m-%d')}.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
