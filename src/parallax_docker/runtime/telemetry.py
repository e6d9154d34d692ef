"""What the runtime measures: spawn and stop durations, errors by code, agents, reconnects.

``Telemetry`` is the recorder the service calls; its methods do nothing, so a service built
without one (tests, tools) pays nothing. ``PrometheusTelemetry`` records into its own
``CollectorRegistry`` (never the process-wide default, so several apps in one process do not
clash); the agent gauge and the reconnect count are read at scrape time from callables, not
kept up to date by hand.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from parallax_docker.errors import ParallaxError
from parallax_docker.models import AGENT_TYPES, AgentStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Spawns wait for readiness (seconds to a minute); stops wait up to the grace period.
SPAWN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
STOP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0)

AgentKinds = Callable[[], Iterable[tuple[str, str]]]


def outcome_of(error: BaseException | None) -> str:
    """A bounded label value for how an operation ended: ``ok`` or an error code."""
    if error is None:
        return "ok"
    if isinstance(error, ParallaxError):
        return error.code
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "INTERNAL_ERROR"


class Telemetry:
    """The recorder interface, doing nothing."""

    def spawn_finished(self, agent_type: str, seconds: float, error: BaseException | None) -> None:
        """A spawn ended after ``seconds``: ready (``error`` None) or failed."""

    def stop_finished(self, seconds: float, error: BaseException | None) -> None:
        """A stop (stop or kill, then remove) ended after ``seconds``."""

    def error(self, code: str, source: str) -> None:
        """An error with ``code`` was answered by the API or met by the reconciler."""


class PrometheusTelemetry(Telemetry):
    def __init__(self, namespace: str = "parallax") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._spawn = Histogram(
            "spawn_duration_seconds",
            "Time from POST /agents to a ready agent (or to the failure), by type and outcome",
            ["type", "outcome"],
            namespace=namespace,
            buckets=SPAWN_BUCKETS,
            registry=self.registry,
        )
        self._stop = Histogram(
            "stop_duration_seconds",
            "Time to stop (SIGTERM, then SIGKILL after the grace period) and remove an agent",
            ["outcome"],
            namespace=namespace,
            buckets=STOP_BUCKETS,
            registry=self.registry,
        )
        self._errors = PromCounter(
            "errors",
            "Errors by code: answered by the API (source=api) or met by the engine event "
            "watcher (source=reconciler)",
            ["code", "source"],
            namespace=namespace,
            registry=self.registry,
        )
        self._namespace = namespace

    def spawn_finished(self, agent_type: str, seconds: float, error: BaseException | None) -> None:
        self._spawn.labels(type=agent_type, outcome=outcome_of(error)).observe(seconds)

    def stop_finished(self, seconds: float, error: BaseException | None) -> None:
        self._stop.labels(outcome=outcome_of(error)).observe(seconds)

    def error(self, code: str, source: str) -> None:
        self._errors.labels(code=code, source=source).inc()

    def watch(self, agents: AgentKinds, reconnects: Callable[[], int]) -> None:
        """Read the agents' (status, type) pairs and the reconnect count at each scrape."""
        self.registry.register(_RuntimeCollector(self._namespace, agents, reconnects))

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class _RuntimeCollector(Collector):
    def __init__(self, namespace: str, agents: AgentKinds, reconnects: Callable[[], int]) -> None:
        self._namespace = namespace
        self._agents = agents
        self._reconnects = reconnects

    def describe(self) -> Iterable[Metric]:
        # Described without reading the service, so registering never touches it.
        return [
            GaugeMetricFamily(f"{self._namespace}_agents", "", labels=["status", "type"]),
            CounterMetricFamily(f"{self._namespace}_event_stream_reconnects", ""),
        ]

    def collect(self) -> Iterator[Metric]:
        agents = GaugeMetricFamily(
            f"{self._namespace}_agents",
            "Agents known to the runtime, by status and type",
            labels=["status", "type"],
        )
        counts = Counter(self._agents())
        types = sorted(set(AGENT_TYPES) | {agent_type for _, agent_type in counts})
        for status in AgentStatus:
            for agent_type in types:
                count = counts.get((status.value, agent_type), 0)
                agents.add_metric([status.value, agent_type], count)
        yield agents
        yield CounterMetricFamily(
            f"{self._namespace}_event_stream_reconnects",
            "Times the Docker engine's event stream was lost and the watcher reconnected",
            value=self._reconnects(),
        )
