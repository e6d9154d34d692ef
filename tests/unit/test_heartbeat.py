"""Agents that beat a heartbeat: readiness from the first beat, health from the beats after, no
Docker health check (the fake platform; tests/integration/test_heartbeat.py on the real one)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from parallax_docker.errors import HealthCheckFailedError
from parallax_docker.models import AgentStatus
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.heartbeat import STALE_BEATS
from tests.unit.fakes import image
from tests.unit.harness import IMAGE, Harness, harness, request


def _beating(h: Harness) -> None:
    h.fake.images[IMAGE] = image(beats=True)


async def test_an_agent_that_beats_gets_its_channel_and_no_docker_health_check(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_HEARTBEAT_INTERVAL_S="7") as h:
        _beating(h)
        handle = await h.runtime.spawner.spawn(request(id="a1"))
        assert handle.status == AgentStatus.READY and handle.health == "healthy"
        (spec,) = h.fake.called("create")
        assert spec.image_healthcheck is False
        assert spec.env == {"PARALLAX_HEARTBEAT_S": "7"}
        assert "/run/parallax/heartbeat" in {mount.target for mount in spec.mounts}
        assert h.deployment.fake_heartbeats.attached == ["a1"]
        # Readiness came from the beat: nothing ran in the container.
        assert h.fake.called("exec") == []


async def test_an_agent_without_a_heartbeat_keeps_its_images_health_check(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        (spec,) = h.fake.called("create")
        assert spec.image_healthcheck is True and spec.env == {}
        assert h.deployment.fake_heartbeats.attached == []


async def test_a_spawn_waits_for_an_ok_beat_and_says_what_the_last_beat_reported(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_READY_TIMEOUT_S="0.3") as h:
        _beating(h)
        beats = h.deployment.fake_heartbeats
        beats.healthy = False
        original = beats.attach

        def attach_failing(key: str) -> tuple[object, ...]:
            mounts = original(key)
            beats.beat(key, "claude is not installed or not executable")
            return mounts

        beats.attach = attach_failing  # type: ignore[method-assign,assignment]
        with pytest.raises(HealthCheckFailedError, match="claude is not installed"):
            await h.runtime.spawner.spawn(request(id="a1"))
        assert h.runtime.registry.find("a1") is None and h.fake.containers == {}


async def test_a_beat_from_before_the_container_started_does_not_make_it_ready(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_READY_TIMEOUT_S="0.3") as h:
        _beating(h)
        beats = h.deployment.fake_heartbeats
        beats.healthy = False
        original = beats.attach

        def attach_stale(key: str) -> tuple[object, ...]:
            mounts = original(key)
            beats.beat(key, "ok", at=1.0)  # long before the container's start
            return mounts

        beats.attach = attach_stale  # type: ignore[method-assign,assignment]
        with pytest.raises(HealthCheckFailedError, match="no heartbeat yet"):
            await h.runtime.spawner.spawn(request(id="a1"))


async def test_a_failing_report_makes_the_agent_unhealthy_and_ok_makes_it_ready_again(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        _beating(h)
        await h.runtime.spawner.spawn(request(id="a1"))
        watch = h.runtime.janitor._heartbeats
        assert watch is not None
        beats = h.deployment.fake_heartbeats
        h.drain()
        beats.beat("a1", "process 42 is stopped")
        assert watch.sweep(force=True) == 1
        handle = h.runtime.registry.get("a1").handle()
        assert handle.status == AgentStatus.ERROR and handle.health == "unhealthy"
        assert handle.error_code == "HEALTH_CHECK_FAILED"
        assert handle.error == "the agent's heartbeat says: process 42 is stopped"
        assert h.names() == ["agent_error"]
        beats.beat("a1", "ok")
        watch.sweep(force=True)
        handle = h.runtime.registry.get("a1").handle()
        assert handle.status == AgentStatus.READY and handle.health == "healthy"
        assert handle.error is None
        assert h.names() == ["agent_ready"]


async def test_silence_for_three_intervals_makes_the_agent_unhealthy_once(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_HEARTBEAT_INTERVAL_S="5") as h:
        _beating(h)
        await h.runtime.spawner.spawn(request(id="a1"))
        watch = h.runtime.janitor._heartbeats
        assert watch is not None
        record = h.runtime.registry.get("a1")
        beat = h.deployment.fake_heartbeats.beats["a1"]
        h.drain()
        # Nothing new in the channel since the ready beat; its time is the last beat's.
        quiet = beat.at + STALE_BEATS * 5
        watch.sweep(quiet - 1, force=True)
        assert record.handle().status == AgentStatus.READY
        watch.sweep(quiet + 1, force=True)
        assert record.handle().status == AgentStatus.ERROR
        assert record.error == "the agent's heartbeat says: no heartbeat in over 15s"
        watch.sweep(quiet + 30, force=True)
        assert h.names() == ["agent_error"]


async def test_the_watch_reads_once_per_interval_and_skips_paused_and_busy_operations(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, PARALLAX_HEARTBEAT_INTERVAL_S="5") as h:
        _beating(h)
        await h.runtime.spawner.spawn(request(id="a1"))
        watch = h.runtime.janitor._heartbeats
        assert watch is not None
        now = time.time()
        assert watch.sweep(now) == 1
        assert watch.sweep(now + 4) == 0  # within the interval
        record = h.runtime.registry.get("a1")
        assert record.state is not None
        lifecycle.observed(record, replace(record.state, status="paused"))
        assert watch.sweep(now + 100, force=True) == 0
        lifecycle.stop_begun(record)
        assert watch.sweep(now + 200, force=True) == 0


async def test_silence_counts_from_the_thaw_of_a_paused_agent(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_HEARTBEAT_INTERVAL_S="5") as h:
        _beating(h)
        await h.runtime.spawner.spawn(request(id="a1"))
        watch = h.runtime.janitor._heartbeats
        assert watch is not None
        record = h.runtime.registry.get("a1")
        assert record.state is not None
        running = record.state
        lifecycle.observed(record, replace(running, status="paused"))
        thaw = time.time() + 600
        watch.sweep(thaw, force=True)
        lifecycle.observed(record, running)
        watch.sweep(thaw + 1, force=True)
        assert record.handle().status == AgentStatus.READY
        watch.sweep(thaw + STALE_BEATS * 5 + 2, force=True)
        assert record.handle().status == AgentStatus.ERROR


async def test_an_unhealthy_auto_restart_agent_is_restarted_and_ready_again(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        _beating(h)
        await h.runtime.spawner.spawn(request(id="a1", autoRestart=True))
        beats = h.deployment.fake_heartbeats
        beats.beat("a1", "process 42 is stopped")
        restarting = asyncio.Event()
        h.fake.hold["restart"] = restarting
        await h.runtime.janitor.sweep(time.time() + 10)
        while not h.fake.called("restart"):
            await asyncio.sleep(0)
        record = h.runtime.registry.get("a1")
        assert record.restart_count == 1 and record.status == AgentStatus.STARTING
        # The restarted agent beats "ok": that, not the failure read before, makes it ready.
        beats.beat("a1", "ok")
        restarting.set()
        await h.runtime.janitor.settle()
        handle = record.handle()
        assert handle.status == AgentStatus.READY and handle.health == "healthy"
