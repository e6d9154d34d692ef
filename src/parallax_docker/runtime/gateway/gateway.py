"""The model gateway: a runtime part with ``start()``/``stop()`` that owns the token book, the
provider keys, the meter, the relays and the HTTP server on the Unix socket the relays reach.
docs/gateway.md draws the path of one call.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from parallax_docker.backends.base import Backend
from parallax_docker.backends.capabilities import SecretDelivery
from parallax_docker.config import Settings
from parallax_docker.egress import allow_list
from parallax_docker.models import AgentStatus, Budget, ModelCounts, ModelUsage
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.events import AgentEvent, Publisher
from parallax_docker.runtime.gateway.budgets import BudgetBook, Overrun, overrun
from parallax_docker.runtime.gateway.forward import Forwarder
from parallax_docker.runtime.gateway.keys import KeyStore
from parallax_docker.runtime.gateway.ledger import Ledger
from parallax_docker.runtime.gateway.meter import Caller, Meter, Tally, price_table
from parallax_docker.runtime.gateway.proxy import EgressProxy
from parallax_docker.runtime.gateway.relays import Relays
from parallax_docker.runtime.gateway.secrets import GatewaySecrets
from parallax_docker.runtime.gateway.server import GatewayServer
from parallax_docker.runtime.gateway.tokens import TokenBook
from parallax_docker.runtime.labels import THREAD_PREFIX, decode_egress
from parallax_docker.runtime.loops import Loop
from parallax_docker.runtime.registry import Registry

log = logging.getLogger(__name__)

# The uid the relays run as (nobody) when the service is root: it alone may enter the socket's
# folder. A service that is not root runs them as its own uid.
RELAY_UID = 65534
_LIVE = frozenset(
    {AgentStatus.STARTING, AgentStatus.AUTHENTICATING, AgentStatus.READY, AgentStatus.BUSY}
)


BUDGET_EXCEEDED = "BUDGET_EXCEEDED"


@dataclass(frozen=True)
class TurnMark:
    at: float
    input_tokens: int
    output_tokens: int
    cost_usd: float


class Gateway:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        registry: Registry,
        publisher: Publisher,
        engine: EngineLink,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._registry = registry
        self._publisher = publisher
        # When each agent was last refused for its budget (the turn then ends BUDGET_EXCEEDED).
        self._overrun_at: dict[str, float] = {}
        folder = settings.state_dir / "gateway" / settings.instance
        self.tokens = TokenBook(folder / "token.key")
        self.keys = KeyStore(folder / "keys")
        self.meter = Meter(price_table(settings.gateway_prices))
        self.ledger = Ledger(folder / "counts.json", self.meter)
        self._ledger_loop = Loop("gateway-counts", self.ledger.step)
        self.budgets = BudgetBook(folder / "budgets")
        self._relay_uid = RELAY_UID if os.geteuid() == 0 else os.geteuid()
        self.relays = Relays(
            backend,
            instance=settings.instance,
            image=settings.image_for("base"),
            socket_folder=folder / "socket",
            user=f"{self._relay_uid}:{self._relay_uid}",
        )
        proxy = EgressProxy(self.egress_policy_of, self.meter, egress_hosts(settings))
        self._sweeper = Loop("gateway-relays", self.sweep_relays)
        self.server = GatewayServer(folder / "socket", self._relay_uid, proxy)

    def secrets(self, inner: SecretDelivery) -> GatewaySecrets:
        """``inner`` with provider keys kept here and the agent given its token instead."""
        return GatewaySecrets(inner, self.keys, self.tokens, self.forget)

    def forget(self, agent_id: str) -> None:
        self.meter.forget(agent_id)
        self.budgets.remove("agent", agent_id)
        self._overrun_at.pop(agent_id, None)

    def caller_of(self, agent_id: str, peer: str) -> Caller | None:
        """The caller when the token's agent is live and the call came from its container."""
        record = self._registry.find(agent_id)
        if record is None or record.stopping or record.status not in _LIVE:
            return None
        if record.state is None or peer not in record.state.addresses:
            return None
        thread_id = dict(record.labels.thread_labels).get(THREAD_PREFIX + "id")
        return Caller(agent_id, record.labels.execution_id, thread_id, self.budget_of(agent_id))

    def egress_policy_of(self, peer: str) -> tuple[Caller, tuple[str, ...]] | None:
        """The live agent calling from ``peer`` and its egress allow-list, when proxied."""
        for record in self._registry:
            if record.state is None or peer not in record.state.addresses:
                continue
            if record.stopping or record.status not in _LIVE:
                return None
            allowed = allow_list(decode_egress(record.labels.egress))
            if allowed is None:
                return None
            return Caller(record.id, record.labels.execution_id), allowed
        return None

    # -- budgets --------------------------------------------------------------------------

    def budget_of(self, agent_id: str) -> Budget | None:
        """The agent's budget: the last PATCH, else its spawn's."""
        raised = self.budgets.get("agent", agent_id)
        if raised is not None:
            return raised
        record = self._registry.find(agent_id)
        label = record.labels.budget if record is not None else None
        return Budget.model_validate_json(label) if label else None

    def admit(self, caller: Caller) -> Overrun | None:
        over = overrun(caller.budget, self.meter.of_agent(caller.agent_id), "agent")
        if over is None and caller.execution_id is not None:
            over = overrun(
                self.budgets.get("execution", caller.execution_id),
                self.meter.of_execution(caller.execution_id),
                "execution",
            )
        if over is None:
            return None
        first = caller.agent_id not in self._overrun_at
        self._overrun_at[caller.agent_id] = time.time()
        if first:
            self._publisher.publish(
                [
                    AgentEvent(
                        "budget_exceeded",
                        {
                            "scope": over.scope,
                            "limit": over.limit,
                            "allowed": over.allowed,
                            "used": over.used,
                            "executionId": caller.execution_id,
                        },
                        caller.agent_id,
                    )
                ]
            )
        return over

    def set_budget(self, scope: str, name: str, budget: Budget) -> None:
        self.budgets.set(scope, name, budget)
        # A raise lets calls through again; a later overrun is reported anew.
        if scope == "agent":
            self._overrun_at.pop(name, None)
        else:
            for agent_id in [a for a in self._overrun_at if self._execution_of(a) == name]:
                self._overrun_at.pop(agent_id, None)

    def _execution_of(self, agent_id: str) -> str | None:
        record = self._registry.find(agent_id)
        return record.labels.execution_id if record is not None else None

    def overrun_since(self, agent_id: str, since: float) -> bool:
        """Whether a call of the agent was refused for its budget at or after ``since``."""
        return self._overrun_at.get(agent_id, 0.0) >= since

    # -- what it counted ------------------------------------------------------------------

    def usage(self, agent_id: str) -> ModelUsage:
        return _view(self.budget_of(agent_id), self.meter.of_agent(agent_id), "agent")

    def thread_usage(self, thread_id: str) -> ModelUsage:
        return _view(None, self.meter.threads.get(thread_id) or Tally(), "thread")

    def execution_usage(self, execution_id: str) -> ModelUsage:
        budget = self.budgets.get("execution", execution_id)
        return _view(budget, self.meter.of_execution(execution_id), "execution")

    # -- a turn's share -------------------------------------------------------------------

    def mark(self, agent_id: str) -> TurnMark:
        """Where the agent's counts stand as a turn begins."""
        tally = self.meter.of_agent(agent_id)
        return TurnMark(time.time(), tally.input_tokens, tally.output_tokens, tally.cost_usd)

    def settle_turn(self, agent_id: str, mark: TurnMark, metadata: dict[str, Any]) -> None:
        """Put what the gateway counted during the turn in its result's ``usage`` (the
        provider's own figures, whatever the CLI reports), and end a failed turn whose model
        calls were refused for the budget with BUDGET_EXCEEDED."""
        tally = self.meter.of_agent(agent_id)
        metadata["result"]["usage"] = {
            "inputTokens": tally.input_tokens - mark.input_tokens,
            "outputTokens": tally.output_tokens - mark.output_tokens,
            "costUsd": round(tally.cost_usd - mark.cost_usd, 6),
        }
        if metadata.get("code") and self.overrun_since(agent_id, mark.at):
            metadata["code"] = BUDGET_EXCEEDED

    async def sweep_relays(self) -> float:
        """One pass of the relay sweep; the delay to the next."""
        delay = max(self._settings.network_grace_s, 5.0)
        if not self._engine.up:
            return delay  # the registry is not in sync yet: it may not know every agent
        in_use = {record.labels.network for record in self._registry}
        for network in await self.relays.sweep(in_use, self._settings.docker_network):
            self._engine.forget_network(network)
            log.info("gateway relay and its network removed", extra={"network": network})
        return delay

    async def start(self) -> None:
        self.tokens.load()
        self.ledger.load()
        self._ledger_loop.start()
        self._sweeper.start()
        await self.server.start(
            lambda pool: Forwarder(
                self._settings,
                self.tokens,
                self.keys,
                self.meter,
                self.caller_of,
                self.admit,
                pool,
            )
        )

    async def stop(self) -> None:
        await self._sweeper.stop()
        await self.server.stop()
        await self._ledger_loop.stop()
        self.ledger.flush()


def egress_hosts(settings: Settings) -> dict[str, str]:
    """PARALLAX_GATEWAY_EGRESS_HOSTS, "name=address,...": where the proxy dials a name
    (a split-horizon name, a test's stand-in host), before the host's resolver."""
    hosts: dict[str, str] = {}
    for part in (settings.gateway_egress_hosts or "").split(","):
        name, _, address = part.strip().partition("=")
        if name and address:
            hosts[name.lower()] = address
    return hosts


def _counts(tally: Tally) -> dict[str, int | float]:
    return {
        "requests": tally.requests,
        "input_tokens": tally.input_tokens,
        "output_tokens": tally.output_tokens,
        "cost_usd": round(tally.cost_usd, 6),
        "refused": tally.refused,
    }


def _view(budget: Budget | None, tally: Tally, scope: str) -> ModelUsage:
    return ModelUsage(
        **_counts(tally),
        by_provider={name: ModelCounts(**_counts(t)) for name, t in tally.by_provider.items()},
        budget=budget,
        budget_exceeded=overrun(budget, tally, scope) is not None,
    )
