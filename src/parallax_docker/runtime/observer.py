"""What the engine reports, applied to the registry: adoption at each sync, then each change.

The reconciler calls these with what it read; the records change only through lifecycle
transitions, and the events those return are published here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from parallax_docker.backends.base import ContainerState
from parallax_docker.backends.capabilities import SecretDelivery
from parallax_docker.runtime import lifecycle
from parallax_docker.runtime.events import Publisher
from parallax_docker.runtime.labels import AgentLabels
from parallax_docker.runtime.metrics import MetricsSampler
from parallax_docker.runtime.pool.claims import ClaimStore
from parallax_docker.runtime.registry import Registry


class Observer:
    def __init__(
        self,
        *,
        registry: Registry,
        claims: ClaimStore,
        secrets: SecretDelivery,
        publisher: Publisher,
        sampler: MetricsSampler,
        secret_keys_in_use: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self._registry = registry
        self._claims = claims
        self._secrets = secrets
        self._publisher = publisher
        self._sampler = sampler
        self._secret_keys_in_use = secret_keys_in_use

    def identity(self, state: ContainerState) -> AgentLabels | None:
        """The agent a container is: its labels say, or a claim of the warm pool does."""
        return AgentLabels.decode(state.labels) or self._claims.labels(state.id)

    def agent_of_container(self, container_id: str) -> str | None:
        """The agent id of a claimed pooled container (its labels do not name it)."""
        labels = self._claims.labels(container_id)
        return labels.id if labels is not None else None

    def adopt(self, states: Iterable[ContainerState]) -> None:
        """Make the registry match the engine's managed containers (start-up and resync)."""
        seen: set[str] = set()
        for state in states:
            labels = self.identity(state)
            if labels is None:
                continue
            seen.add(labels.id)
            record = self._registry.find(labels.id)
            if record is None:
                record = lifecycle.adopted(labels)
                self._registry.put(record)
            self._publisher.publish(lifecycle.observed(record, state))
        for record in self._registry:
            if record.id not in seen and not record.in_operation:
                self._drop(record.id)
                self._publisher.publish(lifecycle.vanished(record))
        # Secrets of agents whose containers are gone (removed while the service was down),
        # except those that pooled containers have mounted.
        keep = [record.id for record in self._registry] + list(self._secret_keys_in_use())
        with contextlib.suppress(OSError):
            self._secrets.prune(keep=keep)

    def observe(self, state: ContainerState) -> None:
        labels = self.identity(state)
        if labels is None:
            return
        record = self._registry.find(labels.id)
        if record is None:
            record = lifecycle.adopted(labels)
            self._registry.put(record)
        self._publisher.publish(lifecycle.observed(record, state))

    def forget(self, agent_id: str) -> None:
        """The container is gone (removed behind our back, or by us)."""
        record = self._registry.find(agent_id)
        if record is None or record.in_operation:
            return
        self._drop(agent_id)
        self._publisher.publish(lifecycle.vanished(record))

    def _drop(self, agent_id: str) -> None:
        self._registry.drop(agent_id)
        self._sampler.forget(agent_id)
        with contextlib.suppress(OSError):
            self._secrets.remove(agent_id)
