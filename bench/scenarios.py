"""Each measurement of the benchmark: the service and the raw engine, side by side.

Every scenario returns plain data (milliseconds unless a name says otherwise) that
``bench.report`` turns into targets and tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.engine import ImageFacts, Limits, RawEngine
from bench.proxy import CountingProxy
from bench.service import BenchService
from bench.stats import Summary

MIB = 1024 * 1024
Log = Callable[[str], None]


@dataclass
class Context:
    run: str
    raw: RawEngine
    api: httpx.AsyncClient
    service: BenchService
    image: ImageFacts
    network: str
    instance: str
    service_env: dict[str, str]
    workdir: Path
    log: Log
    trials: int
    counter: int = 0
    population: list[str] = field(default_factory=list)
    # agent id -> container id of the population
    containers: dict[str, str] = field(default_factory=dict)

    def next_id(self, kind: str) -> str:
        self.counter += 1
        return f"b{self.run}-{kind}{self.counter}"


TIMED_LIMITS = Limits(memory_bytes=64 * MIB, nano_cpus=500_000_000)
BULK_LIMITS = Limits(memory_bytes=32 * MIB, nano_cpus=100_000_000)


def spawn_body(ctx: Context, agent_id: str, limits: Limits) -> dict[str, Any]:
    return {
        "id": agent_id,
        "name": f"n-{agent_id}",
        "type": "custom",
        "image": ctx.image.ref,
        "resources": {"memory": f"{limits.memory_bytes // MIB}m", "cpu": limits.nano_cpus / 1e9},
    }


def raw_body(ctx: Context, name: str, limits: Limits, **extra: Any) -> dict[str, Any]:
    # The same aliases the service gives an agent: its name, container name and id.
    return ctx.raw.container_body(
        ctx.image,
        limits,
        network=ctx.network,
        aliases=(f"n-{name}", f"parallax-{name}", name),
        labels={"parallax.bench.run": ctx.run},
        **extra,
    )


async def timed(action: Awaitable[Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await action
    return (time.perf_counter() - started) * 1000.0, result


async def service_spawn(ctx: Context, agent_id: str, limits: Limits) -> dict[str, Any]:
    response = await ctx.api.post("/agents", json=spawn_body(ctx, agent_id, limits))
    if response.status_code != 201:
        raise RuntimeError(f"spawn {agent_id}: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def service_stop(ctx: Context, agent_id: str) -> None:
    response = await ctx.api.delete(f"/agents/{agent_id}")
    if response.status_code != 204:
        raise RuntimeError(f"stop {agent_id}: {response.status_code} {response.text[:300]}")


# -- spawn and stop, one at a time ------------------------------------------------------------


async def spawn_and_stop(ctx: Context, warmup: int = 2) -> dict[str, Any]:
    """Sequential spawns and stops, service and raw interleaved (order alternating)."""
    spawn: dict[str, list[float]] = {"service": [], "raw": []}
    stop: dict[str, list[float]] = {"service": [], "raw": []}
    for trial in range(warmup + ctx.trials):
        keep = trial >= warmup
        kinds = ("service", "raw") if trial % 2 == 0 else ("raw", "service")
        made: dict[str, str] = {}
        for kind in kinds:
            name = ctx.next_id("s")
            if kind == "service":
                ms, _ = await timed(service_spawn(ctx, name, TIMED_LIMITS))
            else:
                ms, cid = await timed(
                    ctx.raw.spawn(
                        f"parallax-{name}", raw_body(ctx, name, TIMED_LIMITS), ctx.image.probe
                    )
                )
                name = cid
            made[kind] = name
            if keep:
                spawn[kind].append(ms)
            await asyncio.sleep(0.2)
        for kind in kinds:
            if kind == "service":
                ms, _ = await timed(service_stop(ctx, made[kind]))
            else:
                ms, _ = await timed(ctx.raw.stop_and_remove(made[kind]))
            if keep:
                stop[kind].append(ms)
            await asyncio.sleep(0.2)
        ctx.log(
            f"  trial {trial + 1}/{warmup + ctx.trials}"
            + (" (warm-up)" if not keep else "")
            + "".join(f"  {k} spawn {spawn[k][-1]:.0f} ms" for k in kinds if keep and spawn[k])
        )
    return {
        "spawn": {k: Summary.of(v).as_dict() | {"samples": v} for k, v in spawn.items()},
        "stop": {k: Summary.of(v).as_dict() | {"samples": v} for k, v in stop.items()},
    }


# -- 50 at once ---------------------------------------------------------------------------------


async def concurrent_spawns(ctx: Context, count: int = 50, rounds: int = 3) -> dict[str, Any]:
    walls: dict[str, list[float]] = {"service": [], "raw": []}
    stop_walls: dict[str, list[float]] = {"service": [], "raw": []}
    errors: dict[str, int] = {"service": 0, "raw": 0}
    for round_no in range(rounds):
        kinds = ("service", "raw") if round_no % 2 == 0 else ("raw", "service")
        for kind in kinds:
            names = [ctx.next_id("c") for _ in range(count)]
            calls: list[Coroutine[Any, Any, object]]
            if kind == "service":
                calls = [service_spawn(ctx, n, TIMED_LIMITS) for n in names]
            else:
                calls = [
                    ctx.raw.spawn(f"parallax-{n}", raw_body(ctx, n, TIMED_LIMITS), ctx.image.probe)
                    for n in names
                ]
            started = time.perf_counter()
            results = await asyncio.gather(*calls, return_exceptions=True)
            wall = (time.perf_counter() - started) * 1000.0
            failed = [r for r in results if isinstance(r, BaseException)]
            errors[kind] += len(failed)
            for failure in failed[:3]:
                ctx.log(f"  {kind} spawn failed: {failure}")
            walls[kind].append(wall)
            await asyncio.sleep(1.0)
            started = time.perf_counter()
            if kind == "service":
                ok = [n for n, r in zip(names, results, strict=True) if isinstance(r, dict)]
                await asyncio.gather(*(service_stop(ctx, n) for n in ok), return_exceptions=True)
            else:
                ok_ids = [r for r in results if isinstance(r, str)]
                await asyncio.gather(
                    *(ctx.raw.stop_and_remove(c) for c in ok_ids), return_exceptions=True
                )
            stop_walls[kind].append((time.perf_counter() - started) * 1000.0)
            ctx.log(f"  round {round_no + 1}: {kind} {count} spawns in {wall:.0f} ms")
            await asyncio.sleep(2.0)
    return {
        "count": count,
        "wall": {k: Summary.of(v).as_dict() | {"samples": v} for k, v in walls.items()},
        "stop_wall": {k: Summary.of(v).as_dict() for k, v in stop_walls.items()},
        "errors": errors,
    }


# -- readiness: our probe versus Docker's health status ------------------------------------------


async def readiness_choice(
    ctx: Context, trials: int = 3, interval_s: float = 2.0
) -> dict[str, Any]:
    """Start-to-ready with the service's exec probe versus waiting for Docker's health status.

    Both containers get a HEALTHCHECK every ``interval_s`` (the base agent image's interval);
    Docker 20.10 runs the first check only after one full interval and has no start interval.
    """
    probe_ms: list[float] = []
    docker_ms: list[float] = []
    for _ in range(trials):
        for kind in ("probe", "docker"):
            name = ctx.next_id("r")
            body = raw_body(ctx, name, TIMED_LIMITS, healthcheck_interval_s=interval_s)
            cid = await ctx.raw.create(f"parallax-{name}", body)
            try:
                started = time.perf_counter()
                await ctx.raw.start(cid)
                if kind == "probe":
                    await ctx.raw.wait_ready(cid, ctx.image.probe)
                    probe_ms.append((time.perf_counter() - started) * 1000.0)
                else:
                    await ctx.raw.wait_docker_healthy(cid)
                    docker_ms.append((time.perf_counter() - started) * 1000.0)
            finally:
                await ctx.raw.remove(cid)
    return {
        "interval_s": interval_s,
        "exec_probe": Summary.of(probe_ms).as_dict(),
        "docker_health": Summary.of(docker_ms).as_dict(),
    }


# -- reads at 10, 100, 300 agents ---------------------------------------------------------------


async def populate(ctx: Context, target: int, concurrency: int = 8) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            agent_id = ctx.next_id("p")
            handle = await service_spawn(ctx, agent_id, BULK_LIMITS)
            ctx.population.append(agent_id)
            ctx.containers[agent_id] = handle["containerId"]

    missing = target - len(ctx.population)
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(missing)))
    ctx.log(
        f"  {target} agents running ({missing} spawned in {time.perf_counter() - started:.1f} s)"
    )


async def _latencies(
    client: httpx.AsyncClient, paths: Callable[[int], str], n: int, warmup: int = 20
) -> list[float]:
    out = []
    for i in range(warmup + n):
        started = time.perf_counter()
        response = await client.get(paths(i))
        ms = (time.perf_counter() - started) * 1000.0
        if response.status_code != 200:
            raise RuntimeError(f"GET {paths(i)}: {response.status_code} {response.text[:200]}")
        if i >= warmup:
            out.append(ms)
    return out


async def reads(ctx: Context, n: int = 300) -> dict[str, Any]:
    rng = random.Random(7)
    ids = list(ctx.population)
    listing = await _latencies(ctx.api, lambda _: "/agents", n)
    getting = await _latencies(ctx.api, lambda _: f"/agents/{rng.choice(ids)}", n)
    count = (await ctx.api.get("/agents")).json()["count"]
    return {
        "agents": count,
        "list": Summary.of(listing).as_dict(),
        "get": Summary.of(getting).as_dict(),
    }


async def metrics(ctx: Context, n: int = 100, agents: int = 10) -> dict[str, Any]:
    """GET /agents/{id}/metrics (after one warm-up call per agent) vs the engine's stats."""
    ids = ctx.population[:agents]
    for agent_id in ids:
        await ctx.api.get(f"/agents/{agent_id}/metrics")
    service = await _latencies(
        ctx.api, lambda i: f"/agents/{ids[i % len(ids)]}/metrics", n, warmup=0
    )
    one_shot = []
    for i in range(min(n, 30)):
        ms, _ = await timed(ctx.raw.stats(ctx.containers[ids[i % len(ids)]], one_shot=True))
        one_shot.append(ms)
    two_sample = []
    for i in range(3):
        ms, _ = await timed(ctx.raw.stats(ctx.containers[ids[i % len(ids)]], one_shot=False))
        two_sample.append(ms)
    return {
        "service": Summary.of(service).as_dict(),
        "engine_one_shot": Summary.of(one_shot).as_dict(),
        "engine_two_sample": Summary.of(two_sample).as_dict(),
    }


async def rss_mib(ctx: Context) -> float:
    await ctx.api.get("/agents")
    await asyncio.sleep(0.5)
    return ctx.service.rss_bytes() / MIB


async def engine_calls_per_read(ctx: Context, n: int = 200) -> dict[str, Any]:
    """A second service on the same instance, behind a counting proxy: engine calls per read."""
    sock = ctx.workdir / "engine.sock"
    proxy = CountingProxy(sock).start()
    env = dict(ctx.service_env)
    env.update(
        {
            "DOCKER_SOCKET": str(sock),
            "PARALLAX_SECRETS_DIR": str(Path(tempfile.mkdtemp(dir=ctx.workdir))),
            "PARALLAX_STATE_DIR": str(Path(tempfile.mkdtemp(dir=ctx.workdir))),
        }
    )
    env.pop("PARALLAX_POOL", None)
    observer = BenchService(env, ctx.workdir / "observer.log")
    try:
        adopt_started = time.perf_counter()
        observer.start()
        adopt_s = time.perf_counter() - adopt_started
        async with httpx.AsyncClient(base_url=observer.url, timeout=60) as client:
            await _latencies(client, lambda _: "/agents", 5, warmup=0)
            await asyncio.sleep(1.0)
            # What it took to start and adopt the agents: shows the proxy counts.
            at_start = sum(proxy.snapshot().values())
            before = proxy.snapshot()
            idle_started = time.perf_counter()
            await asyncio.sleep(3.0)
            idle_s = time.perf_counter() - idle_started
            idle = proxy.snapshot() - before
            before = proxy.snapshot()
            reads_started = time.perf_counter()
            ids = ctx.population
            await _latencies(client, lambda _: "/agents", n, warmup=0)
            await _latencies(client, lambda i: f"/agents/{ids[i % len(ids)]}", n, warmup=0)
            reads_s = time.perf_counter() - reads_started
            during = proxy.snapshot() - before
    finally:
        observer.stop()
        proxy.stop()
    background = sum(idle.values()) / idle_s * reads_s
    extra = max(0.0, sum(during.values()) - background)
    return {
        "requests": 2 * n,
        "engine_calls_during_reads": dict(during),
        "engine_calls_idle_per_s": round(sum(idle.values()) / idle_s, 2),
        "engine_calls_per_read": round(extra / (2 * n), 4),
        "observer_start_and_adopt_s": round(adopt_s, 2),
        "engine_calls_to_start_and_adopt": at_start,
    }


# -- events: a container dies, how soon does the API say so --------------------------------------


async def events_to_status(ctx: Context, trials: int = 10) -> dict[str, Any]:
    arrivals: dict[str, float] = {}
    ready = asyncio.Event()

    async def watch() -> None:
        async for at, event in ctx.raw.watch_events(f"parallax.instance={ctx.instance}"):
            ready.set()
            if event.get("Action") == "die":
                arrivals.setdefault(str((event.get("Actor") or {}).get("ID")), at)

    watcher = asyncio.create_task(watch())
    # The stream has no greeting: give it a moment to be established.
    await asyncio.sleep(0.5)
    service_ms: list[float] = []
    engine_ms: list[float] = []
    behind_ms: list[float] = []
    victims = ctx.population[-trials:]
    try:
        for agent_id in victims:
            cid = ctx.containers[agent_id]
            started = time.perf_counter()
            # The engine answers a kill only once the container is cleaned up (tens of ms after
            # its "die" event): poll the API while the kill is under way.
            kill = asyncio.create_task(ctx.raw.kill(cid))
            while True:
                body = (await ctx.api.get(f"/agents/{agent_id}")).json()
                if body["status"] in ("stopped", "error"):
                    break
                if time.perf_counter() - started > 30:
                    raise TimeoutError(f"agent {agent_id} still {body['status']}")
                await asyncio.sleep(0.002)
            service_ms.append((time.perf_counter() - started) * 1000.0)
            await kill
            await asyncio.sleep(0.05)
            if cid in arrivals:
                engine_ms.append((arrivals[cid] - started) * 1000.0)
                behind_ms.append(service_ms[-1] - engine_ms[-1])
            await service_stop(ctx, agent_id)
            ctx.population.remove(agent_id)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
    return {
        "service": Summary.of(service_ms).as_dict(),
        "engine_event": Summary.of(engine_ms).as_dict(),
        "service_after_engine_event": Summary.of(behind_ms).as_dict(),
    }
