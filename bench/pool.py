"""Warm-pool measurements: spawn-to-ready of a claim, and of a cold start on the same service.

A second service runs with ``PARALLAX_POOL`` on its own instance. Each trial waits until the
pool is full again (so every claim is a hit), then spawns; a request with a label (which a
pooled container cannot take) is timed alongside as the cold path of the same service. The
service logs each claim's steps; they are summarised to show where a claim's time goes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.engine import ImageFacts, RawEngine
from bench.service import BenchService
from bench.stats import Summary

MIB = 1024 * 1024
POOL_SIZE = 2


async def _idle(raw: RawEngine, instance: str) -> list[str]:
    found = await raw.containers(f"parallax.instance={instance}", "parallax.pool=true")
    return [
        c["Id"]
        for c in found
        if c["State"] == "running" and c["Names"][0].startswith("/parallax-pool-")
    ]


async def _wait_full(raw: RawEngine, instance: str, size: int, timeout_s: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        idle = await _idle(raw, instance)
        if len(idle) >= size:
            # A moment for the service to have them in its idle list, too.
            await asyncio.sleep(0.3)
            return idle
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the pool of {instance} did not fill")


def _claim_steps(log_path: Path) -> dict[str, list[float]]:
    steps: dict[str, list[float]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if "agent claimed from the pool" not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        for step, seconds in (entry.get("steps") or {}).items():
            steps.setdefault(step, []).append(seconds * 1000.0)
        steps.setdefault("total (in the service)", []).append(entry["seconds"] * 1000.0)
    return steps


def _cpu_ns(container_id: str) -> int | None:
    for path in (
        Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat"),
    ):
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.name == "cpuacct.usage":
            return int(text)
        for line in text.splitlines():
            if line.startswith("usage_usec"):
                return int(line.split()[1]) * 1000
    return None


async def _idle_cpu_percent(ids: list[str], seconds: float = 5.0) -> float | None:
    before = {c: _cpu_ns(c) for c in ids}
    await asyncio.sleep(seconds)
    after = {c: _cpu_ns(c) for c in ids}
    used = [(after[c] or 0) - (before[c] or 0) for c in ids if before[c] is not None and after[c]]
    if not used:
        return None
    return round(100.0 * (sum(used) / len(used)) / (seconds * 1e9), 3)


async def measure_one(
    raw: RawEngine,
    image_ref: str | None,
    label: str,
    workdir: Path,
    instance: str,
    base_env: dict[str, str],
    trials: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    spec = f"custom={image_ref}:{POOL_SIZE}" if image_ref else f"custom:{POOL_SIZE}"
    env = dict(base_env)
    env.update(
        {
            "PARALLAX_INSTANCE": instance,
            "PARALLAX_POOL": spec,
            "PARALLAX_STATE_DIR": str(workdir / f"{instance}-state"),
            "PARALLAX_SECRETS_DIR": str(workdir / f"{instance}-secrets"),
            "LOG_LEVEL": "INFO",
        }
    )
    log_path = workdir / f"{instance}.log"
    service = BenchService(env, log_path)
    body: dict[str, Any] = {
        "type": "custom",
        "resources": {"memory": "64m", "cpu": 0.5},
        "env": {"BENCH_TOKEN": "not-a-secret"},
    }
    if image_ref:
        body["image"] = image_ref
    claims: list[float] = []
    cold: list[float] = []
    misses = 0
    try:
        service.start()
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as api:
            idle = await _wait_full(raw, instance, POOL_SIZE)
            idle_cpu = await _idle_cpu_percent(idle)
            for trial in range(2 + trials):
                idle = await _wait_full(raw, instance, POOL_SIZE)
                for kind in ("claim", "cold") if trial % 2 == 0 else ("cold", "claim"):
                    request = {**body, "name": f"{kind}-{trial}-{instance}"}
                    if kind == "cold":
                        request["labels"] = {"bench": "cold"}
                    started = time.perf_counter()
                    response = await api.post("/agents", json=request)
                    ms = (time.perf_counter() - started) * 1000.0
                    if response.status_code != 201:
                        raise RuntimeError(f"pool spawn: {response.status_code} {response.text}")
                    handle = response.json()
                    if trial >= 2:
                        if kind == "cold":
                            cold.append(ms)
                        elif handle["containerId"] in idle:
                            claims.append(ms)
                        else:
                            misses += 1
                    await api.delete(f"/agents/{handle['id']}")
                    await asyncio.sleep(0.2)
            log(
                f"  {label}: claim p50 {Summary.of(claims).median:.1f} ms, "
                f"cold p50 {Summary.of(cold).median:.1f} ms, misses {misses}"
            )
    finally:
        service.stop()
    left = await raw.containers(f"parallax.instance={instance}")
    steps = _claim_steps(log_path)
    return {
        "pool": spec,
        "claim": Summary.of(claims).as_dict() | {"samples": claims},
        "cold": Summary.of(cold).as_dict(),
        "misses": misses,
        "steps": {k: Summary.of(v[2:] if len(v) > 2 else v).as_dict() for k, v in steps.items()},
        "idle_cpu_percent_of_a_core": idle_cpu,
        "containers_left_after_service_stop": len(left),
    }


async def measure(
    raw: RawEngine,
    image: ImageFacts,
    workdir: Path,
    run_id: str,
    base_env: dict[str, str],
    trials: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The pool of the benchmark's image; also the project's base image when it is built."""
    results = await measure_one(
        raw, image.ref, image.ref, workdir, f"pbench-{run_id}-pool", base_env, trials, log
    )
    try:
        base = await raw.json("images/parallax/agent-base:latest/json")
    except Exception:
        base = None
    if base is not None:
        results["base_image"] = await measure_one(
            raw,
            None,
            "parallax/agent-base",
            workdir,
            f"pbench-{run_id}-poolbase",
            base_env,
            trials,
            log,
        )
    return results
