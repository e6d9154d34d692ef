"""GET /metrics of the real service: Prometheus text that parses, and moves when agents do."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import ServiceProcess

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: httpx.Client) -> Samples:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def test_metrics_parse_and_name_every_family(api: httpx.Client) -> None:
    names = {name for name, _ in scrape(api)}
    for wanted in (
        "parallax_agents",
        "parallax_event_stream_reconnects_total",
    ):
        assert wanted in names


def test_a_spawn_moves_the_gauge_and_the_spawn_histogram(
    api: httpx.Client, spawn: Callable[..., dict[str, Any]]
) -> None:
    before = scrape(api)
    spawn()
    after = scrape(api)
    assert total(after, "parallax_agents", status="ready", type="custom") == (
        total(before, "parallax_agents", status="ready", type="custom") + 1
    )
    ok = {"type": "custom", "outcome": "ok"}
    assert total(after, "parallax_spawn_duration_seconds_count", **ok) == (
        total(before, "parallax_spawn_duration_seconds_count", **ok) + 1
    )
    assert total(after, "parallax_spawn_duration_seconds_sum", **ok) > total(
        before, "parallax_spawn_duration_seconds_sum", **ok
    )


def test_a_stop_is_timed(api: httpx.Client, spawn: Callable[..., dict[str, Any]]) -> None:
    handle = spawn()
    before = total(scrape(api), "parallax_stop_duration_seconds_count", outcome="ok")
    assert api.delete(f"/agents/{handle['id']}", params={"timeout": 1000}).status_code == 204
    after = total(scrape(api), "parallax_stop_duration_seconds_count", outcome="ok")
    assert after == before + 1


def test_errors_are_counted_by_code(api: httpx.Client) -> None:
    key = {"code": "AGENT_NOT_FOUND", "source": "api"}
    before = total(scrape(api), "parallax_errors_total", **key)
    assert api.get(f"/agents/none-{uuid.uuid4().hex[:6]}").status_code == 404
    assert total(scrape(api), "parallax_errors_total", **key) == before + 1


def test_each_request_is_logged_once_with_its_id(
    api: httpx.Client, service: ServiceProcess
) -> None:
    request_id = "it-" + uuid.uuid4().hex
    # A query value is never logged: it can be a secret.
    response = api.get(
        "/agents", params={"role": "query-secret"}, headers={"X-Request-ID": request_id}
    )
    assert response.headers["x-request-id"] == request_id
    lines: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5  # the line is written just after the response is sent
    while not lines and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = [
            json.loads(line)
            for line in service.logs().splitlines()
            if line.startswith("{") and request_id in line
        ]
    assert len(lines) == 1
    assert (lines[0]["method"], lines[0]["path"], lines[0]["status"]) == ("GET", "/agents", 200)
    assert "query-secret" not in service.logs()
