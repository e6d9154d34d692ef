"""The gateway's counts in Prometheus, read from the meter at each scrape.

Label cardinality is bounded: ``agent`` takes only agents the runtime knows (an agent's series
go when it is removed), ``provider`` three values, ``kind`` two, ``reason`` a fixed few.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from parallax_docker.runtime.gateway.meter import Meter


class GatewayCollector(Collector):
    def __init__(self, meter: Meter, namespace: str = "parallax") -> None:
        self._meter = meter
        self._ns = namespace

    def _families(self) -> tuple[CounterMetricFamily, ...]:
        return (
            CounterMetricFamily(
                f"{self._ns}_model_tokens",
                "Model tokens counted by the gateway from the providers' answers",
                labels=["agent", "provider", "kind"],
            ),
            CounterMetricFamily(
                f"{self._ns}_model_requests",
                "Model calls forwarded by the gateway",
                labels=["agent", "provider"],
            ),
            CounterMetricFamily(
                f"{self._ns}_model_cost_usd",
                "Cost of the model calls, from the gateway's price table",
                labels=["agent", "provider"],
            ),
            CounterMetricFamily(
                f"{self._ns}_gateway_refusals",
                "Calls the gateway refused, by reason (token, no-key, budget, upstream, egress)",
                labels=["reason"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        tokens, requests, cost, refusals = self._families()
        for agent_id, tally in sorted(self._meter.agents.items()):
            for provider, counts in sorted(tally.by_provider.items()):
                tokens.add_metric([agent_id, provider, "input"], counts.input_tokens)
                tokens.add_metric([agent_id, provider, "output"], counts.output_tokens)
                requests.add_metric([agent_id, provider], counts.requests)
                cost.add_metric([agent_id, provider], counts.cost_usd)
        for reason, count in sorted(self._meter.refusals.items()):
            refusals.add_metric([reason], count)
        yield from (tokens, requests, cost, refusals)
