"""The Prometheus recorder: its own registry, durations, errors by code, agents at scrape time."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from parallax_docker.errors import ImageNotFoundError
from parallax_docker.runtime.telemetry import PrometheusTelemetry, Telemetry, outcome_of


def samples(telemetry: PrometheusTelemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(telemetry.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_outcome_is_ok_a_code_or_cancelled() -> None:
    assert outcome_of(None) == "ok"
    assert outcome_of(ImageNotFoundError("x")) == "IMAGE_NOT_FOUND"
    assert outcome_of(asyncio.CancelledError()) == "cancelled"
    assert outcome_of(KeyError("x")) == "INTERNAL_ERROR"


def test_the_default_recorder_does_nothing() -> None:
    recorder = Telemetry()
    recorder.spawn_finished("claude", 1.0, None)
    recorder.stop_finished(1.0, None)
    recorder.error("X", "api")


def test_spawn_durations_are_counted_by_type_and_outcome() -> None:
    telemetry = PrometheusTelemetry()
    telemetry.spawn_finished("custom", 0.3, None)
    telemetry.spawn_finished("custom", 0.4, ImageNotFoundError("x"))
    found = samples(telemetry)
    ok = (("outcome", "ok"), ("type", "custom"))
    failed = (("outcome", "IMAGE_NOT_FOUND"), ("type", "custom"))
    assert found[("parallax_spawn_duration_seconds_count", ok)] == 1
    assert found[("parallax_spawn_duration_seconds_count", failed)] == 1
    assert found[("parallax_spawn_duration_seconds_sum", ok)] == 0.3


def test_stop_durations_and_errors_are_counted() -> None:
    telemetry = PrometheusTelemetry()
    telemetry.stop_finished(2.0, None)
    telemetry.error("SOCKET_ERROR", "reconciler")
    found = samples(telemetry)
    assert found[("parallax_stop_duration_seconds_count", (("outcome", "ok"),))] == 1
    key = ("parallax_errors_total", (("code", "SOCKET_ERROR"), ("source", "reconciler")))
    assert found[key] == 1


def test_agents_and_reconnects_are_read_at_scrape_time() -> None:
    telemetry = PrometheusTelemetry()
    agents = [("ready", "claude"), ("ready", "claude"), ("error", "codex")]
    reconnects = [0]
    telemetry.watch(agents=lambda: agents, reconnects=lambda: reconnects[0])
    found = samples(telemetry)
    assert found[("parallax_agents", (("status", "ready"), ("type", "claude")))] == 2
    assert found[("parallax_agents", (("status", "stopped"), ("type", "aider")))] == 0
    agents.append(("busy", "claude"))
    reconnects[0] = 3
    found = samples(telemetry)
    assert found[("parallax_agents", (("status", "busy"), ("type", "claude")))] == 1
    assert found[("parallax_event_stream_reconnects_total", ())] == 3


def test_two_recorders_in_one_process_do_not_clash() -> None:
    first, second = PrometheusTelemetry(), PrometheusTelemetry()
    first.stop_finished(1.0, None)
    assert ("parallax_stop_duration_seconds_count", (("outcome", "ok"),)) not in samples(second)
