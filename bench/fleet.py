"""A fleet of real agents: what 300 idle agents of the project's images cost, next to 300 plain
containers of the same images, and how the service reads with them.

Everything runs on a private engine (tests/support/dockerd.py: its own dockerd, containerd,
data root and network namespace), so that the CPU of dockerd and containerd is this fleet's alone
and not that of whatever else the machine's engine serves. The real images are copied in from
the machine's engine. In order:

1. **Plain**: ``count`` containers of the five images (claude, codex, gemini, aider, echo, in
   turn), each as the image runs idle (its entrypoint and ``parallax-idle``), at the default
   limits and the service's hardening, with Docker's health check off. After a settle, CPU
   seconds over ``window_s``: dockerd, containerd, the shims, and everything in the containers.
   Then they are removed.
2. **Agents**: the service on the same engine, default settings (admission included). First the
   spawn-to-ready of a lone agent (``trials`` spawns and stops of an echo agent); then ``count``
   agents of the same mix through ``POST /agents``; after the same settle, the same CPU window
   plus the service's own; then list/get latency, metrics latency and the service's RSS at that
   count; then again ``trials`` spawns of one more agent.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from tests.support.dockerd import PrivateDockerd

from bench import cpu
from bench.engine import ImageFacts, Limits, RawEngine
from bench.service import BenchService
from bench.stats import Summary

MIB = 1024 * 1024
TYPES = ("claude", "codex", "gemini", "aider", "echo")
DEFAULT_LIMITS = Limits(memory_bytes=512 * MIB, nano_cpus=500_000_000)
Log = Callable[[str], None]


def image_refs(tag: str) -> dict[str, str]:
    return {kind: f"parallax/agent-{kind}:{tag}" for kind in TYPES}


def spawn_body(kind: str, images: dict[str, str], name: str) -> dict[str, Any]:
    """An agent of ``kind`` at the default limits (echo is a custom agent of its image)."""
    if kind == "echo":
        return {"name": name, "type": "custom", "image": images["echo"]}
    return {"name": name, "type": kind}


async def _gather_bounded(calls: list[Awaitable[Any]], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Awaitable[Any]) -> Any:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)


async def _window(parts: cpu.Parts, window_s: float) -> dict[str, float]:
    before = parts.sample()
    started = time.monotonic()
    await asyncio.sleep(window_s)
    measured = cpu.spent(before, parts.sample())
    measured["window_s"] = round(time.monotonic() - started, 2)
    return measured


class Fleet:
    def __init__(
        self,
        *,
        workdir: Path,
        run: str,
        tag: str,
        count: int,
        window_s: float,
        settle_s: float,
        trials: int,
        log: Log,
    ) -> None:
        self.workdir = workdir
        self.run = run
        self.images = image_refs(tag)
        self.tag = tag
        self.count = count
        self.window_s = window_s
        self.settle_s = settle_s
        self.trials = trials
        self.log = log
        self.daemon = PrivateDockerd(workdir / "engine")
        # PrivateDockerd puts its containers under this cgroup parent.
        self.cgroup = f"parallax-test-{os.getpid()}"
        self.network = f"pbench-{run}-fleet"
        self.instance = f"pbench-{run}-fleet"

    def mix(self) -> list[str]:
        return [TYPES[i % len(TYPES)] for i in range(self.count)]

    def parts(self, service_pids: tuple[int, ...] = ()) -> cpu.Parts:
        pid = int(self.daemon.pidfile.read_text().strip())
        return cpu.engine_parts(pid, self.daemon.root, self.cgroup, service_pids)

    async def measure(self) -> dict[str, Any]:
        results: dict[str, Any] = {"count": self.count, "window_s": self.window_s}
        started = time.monotonic()
        self.daemon.root.mkdir(parents=True, exist_ok=True)
        self.daemon.start()
        raw = RawEngine(str(self.daemon.socket))
        try:
            self.log(f"  private engine up; copying in {', '.join(self.images.values())}")
            copy_started = time.monotonic()
            await asyncio.to_thread(self.daemon.load_images, *self.images.values())
            results["image_copy_s"] = round(time.monotonic() - copy_started, 1)
            labels = {"parallax.managed": "true", "parallax.instance": self.instance}
            await raw.ensure_network(self.network, labels)
            results["plain"] = await self._plain(raw)
            results["agents"] = await self._agents(raw)
        finally:
            await raw.close()
            await asyncio.to_thread(self.daemon.destroy)
        plain_total = results["plain"]["cpu"]["total"]
        agents_total = results["agents"]["cpu"]["total"]
        results["idle_ratio"] = round(agents_total / plain_total, 3) if plain_total else None
        results["duration_s"] = round(time.monotonic() - started, 1)
        return results

    # -- plain containers -----------------------------------------------------------------

    async def _plain(self, raw: RawEngine) -> dict[str, Any]:
        facts = {kind: await raw.image(ref) for kind, ref in self.images.items()}

        async def one(n: int, kind: str) -> str:
            name = f"pbench-{self.run}-plain{n}"
            body = raw.container_body(
                ImageFacts(facts[kind].ref, facts[kind].user, None),
                DEFAULT_LIMITS,
                network=self.network,
                aliases=(name,),
                labels={"parallax.bench.run": self.run},
            )
            body["Healthcheck"] = {"Test": ["NONE"]}
            container_id = await raw.create(name, body)
            await raw.start(container_id)
            return container_id

        made_started = time.monotonic()
        made = await _gather_bounded([one(n, k) for n, k in enumerate(self.mix())], 8)
        failed = [m for m in made if isinstance(m, BaseException)]
        ids = [m for m in made if isinstance(m, str)]
        self.log(
            f"  {len(ids)} plain containers running ({len(failed)} failed) in "
            f"{time.monotonic() - made_started:.0f} s; settling {self.settle_s:g} s"
        )
        await asyncio.sleep(self.settle_s)
        measured = await _window(self.parts(), self.window_s)
        self.log(f"  plain: {measured}")
        await _gather_bounded([raw.remove(c) for c in ids], 8)
        return {"running": len(ids), "failed": len(failed), "cpu": measured}

    # -- the service and its agents ----------------------------------------------------------

    def _service_env(self) -> dict[str, str]:
        return {
            "DOCKER_SOCKET": str(self.daemon.socket),
            "DOCKER_NETWORK": self.network,
            "PARALLAX_INSTANCE": self.instance,
            "PARALLAX_SECRETS_DIR": str(self.workdir / "fleet-secrets"),
            "PARALLAX_STATE_DIR": str(self.workdir / "fleet-state"),
            "PARALLAX_IMAGE_TAG": self.tag,
            "LOG_LEVEL": "WARNING",
        }

    async def _agents(self, raw: RawEngine) -> dict[str, Any]:
        service = BenchService(self._service_env(), self.workdir / "fleet-service.log")
        service.start()
        try:
            async with httpx.AsyncClient(
                base_url=service.url,
                timeout=300,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
            ) as api:
                return await self._with_service(api, service)
        finally:
            service.stop()

    async def _with_service(self, api: httpx.AsyncClient, service: BenchService) -> dict[str, Any]:
        results: dict[str, Any] = {}
        results["spawn_first"] = await self._spawn_trials(api, "first")
        ids: list[str] = []
        refusals: list[str] = []

        async def one(n: int, kind: str) -> None:
            response = await api.post("/agents", json=spawn_body(kind, self.images, f"f{n}"))
            if response.status_code == 201:
                ids.append(response.json()["id"])
            else:
                refusals.append(f"{response.status_code} {response.text[:300]}")

        made_started = time.monotonic()
        await _gather_bounded([one(n, k) for n, k in enumerate(self.mix())], 8)
        results["spawned"] = len(ids)
        results["refused"] = refusals[:5]
        results["refused_count"] = len(refusals)
        self.log(
            f"  {len(ids)} agents ready ({len(refusals)} refused) in "
            f"{time.monotonic() - made_started:.0f} s; settling {self.settle_s:g} s"
        )
        for refusal in refusals[:3]:
            self.log(f"    refused: {refusal}")
        await asyncio.sleep(self.settle_s)
        listed = (await api.get("/agents")).json()["agents"]
        results["ready"] = sum(1 for a in listed if a["status"] == "ready")
        results["healthy"] = sum(1 for a in listed if a.get("health") == "healthy")
        results["cpu"] = await _window(self.parts((service.pid,)), self.window_s)
        self.log(f"  agents: {results['cpu']}")
        results["reads"] = await _reads(api, ids)
        results["metrics"] = await _metrics(api, ids[:10])
        results["rss_mib"] = round(service.rss_bytes() / MIB, 1)
        results["memory_available_mib"] = _available_mib()
        results["spawn_next"] = await self._spawn_trials(api, "next")
        self.log(
            f"  reads: list p50 {results['reads']['list']['median']:.2f} ms, get p50 "
            f"{results['reads']['get']['median']:.2f} ms, metrics p50 "
            f"{results['metrics']['median']:.2f} ms, RSS {results['rss_mib']} MiB"
        )
        return results

    async def _spawn_trials(self, api: httpx.AsyncClient, which: str) -> dict[str, Any]:
        """Spawn-to-ready of one more echo agent at default limits, ``trials`` times."""
        timings: list[float] = []
        for n in range(self.trials):
            started = time.perf_counter()
            response = await api.post(
                "/agents", json=spawn_body("echo", self.images, f"t-{which}{n}")
            )
            elapsed = (time.perf_counter() - started) * 1000.0
            if response.status_code != 201:
                raise RuntimeError(f"spawn ({which}): {response.status_code} {response.text[:300]}")
            timings.append(elapsed)
            stopped = await api.delete(f"/agents/{response.json()['id']}")
            if stopped.status_code != 204:
                raise RuntimeError(f"stop ({which}): {stopped.status_code} {stopped.text[:300]}")
            await asyncio.sleep(0.5)
        return Summary.of(timings).as_dict() | {"samples": timings}


async def _latencies(api: httpx.AsyncClient, paths: Callable[[int], str], n: int) -> list[float]:
    out = []
    for i in range(20 + n):
        started = time.perf_counter()
        response = await api.get(paths(i))
        if response.status_code != 200:
            raise RuntimeError(f"GET {paths(i)}: {response.status_code}")
        if i >= 20:
            out.append((time.perf_counter() - started) * 1000.0)
    return out


async def _reads(api: httpx.AsyncClient, ids: list[str], n: int = 300) -> dict[str, Any]:
    rng = random.Random(13)
    listing = await _latencies(api, lambda _: "/agents", n)
    getting = await _latencies(api, lambda _: f"/agents/{rng.choice(ids)}", n)
    return {"list": Summary.of(listing).as_dict(), "get": Summary.of(getting).as_dict()}


async def _metrics(api: httpx.AsyncClient, ids: list[str], n: int = 100) -> dict[str, Any]:
    for agent_id in ids:
        await api.get(f"/agents/{agent_id}/metrics")
    timings = await _latencies(api, lambda i: f"/agents/{ids[i % len(ids)]}/metrics", n)
    return Summary.of(timings).as_dict()


def _available_mib() -> float | None:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None
