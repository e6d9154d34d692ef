"""The runtime: one object that makes, owns, starts and stops every long-lived part.

Each part gets only what it needs through its constructor; none reaches through another. The
API calls the verbs (``spawner``, ``operations``, ``queries``, ``messaging``, ``terminals``,
``executions``, ``files``, ``workspace``, ``previews``, ``gc``); the loops (``reconciler``,
``janitor``, the warm pool) and ``recovery`` keep the registry true and finish what a crash
cut short. docs/architecture.md draws the rooms.
"""

from __future__ import annotations

import logging

from parallax_docker.backends.capabilities import Deployment
from parallax_docker.config import Settings
from parallax_docker.runtime.admission import Admission
from parallax_docker.runtime.engine_link import EngineLink
from parallax_docker.runtime.events import Publisher
from parallax_docker.runtime.executions import Executions
from parallax_docker.runtime.files import FileService
from parallax_docker.runtime.gc import GarbageCollector
from parallax_docker.runtime.heartbeat import HeartbeatWatch
from parallax_docker.runtime.janitor import Janitor
from parallax_docker.runtime.journal import Journal
from parallax_docker.runtime.labels import selector
from parallax_docker.runtime.messaging import MessagingService
from parallax_docker.runtime.metrics import MetricsSampler
from parallax_docker.runtime.observer import Observer
from parallax_docker.runtime.operations import Operations
from parallax_docker.runtime.outages import Outages
from parallax_docker.runtime.pool.claims import ClaimStore
from parallax_docker.runtime.pool.pool import WarmPool
from parallax_docker.runtime.previews import Previews
from parallax_docker.runtime.queries import Queries
from parallax_docker.runtime.readiness import Readiness
from parallax_docker.runtime.reconciler import Reconciler
from parallax_docker.runtime.recovery import Recovery
from parallax_docker.runtime.registry import Registry
from parallax_docker.runtime.snapshots import SnapshotStore
from parallax_docker.runtime.spawner import Spawner
from parallax_docker.runtime.store import Store, StoredEventBus
from parallax_docker.runtime.telemetry import Telemetry
from parallax_docker.runtime.terminal import TerminalService
from parallax_docker.runtime.threads.book import ThreadBook
from parallax_docker.runtime.threads.follower import Follower
from parallax_docker.runtime.threads.service import Threads
from parallax_docker.runtime.threads.workers import Workers
from parallax_docker.runtime.turns import TurnRunner
from parallax_docker.runtime.unprivileged import UserLookup
from parallax_docker.runtime.workspace import Workspace

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        deployment: Deployment,
        *,
        store: Store,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.deployment = deployment
        self.store = store
        self.telemetry = telemetry or Telemetry()
        backend = deployment.backend
        secrets = deployment.secrets
        self.selector = selector(settings.instance)
        self.bus = StoredEventBus(store)
        publisher = Publisher(self.bus)
        self.registry = Registry()
        self.engine = EngineLink(backend, settings.docker_network, self.selector)
        self.journal = Journal(
            settings.state_dir / "journal" / settings.instance, settings.failpoints
        )
        # Which agents claimed pooled containers are: read before the first sync, and kept
        # even when the pool is now off, so claimed agents are served after any restart.
        self.claims = ClaimStore(settings.state_dir / "pool" / settings.instance)
        sampler = MetricsSampler(backend)
        readiness = Readiness(backend, deployment.heartbeats)
        warm = deployment.warm_start
        users = UserLookup(backend, allow_root=settings.allow_root, tmpfs_size=settings.tmpfs_size)
        self.pool = (
            WarmPool(settings, backend, warm, self.claims, self.engine, users, readiness)
            if warm is not None and any(size.size for size in settings.pool)
            else None
        )
        # What agents change in their workspace, against a snapshot taken at spawn.
        self.workspace = Workspace(
            settings=settings,
            backend=backend,
            registry=self.registry,
            engine=self.engine,
            store=SnapshotStore(settings.state_dir / "workspace" / settings.instance),
        )
        self.spawner = Spawner(
            settings=settings,
            backend=backend,
            secrets=secrets,
            registry=self.registry,
            engine=self.engine,
            publisher=publisher,
            journal=self.journal,
            telemetry=self.telemetry,
            pool=self.pool,
            users=users,
            on_ready=self.workspace.baseline,
            admission=Admission(settings, backend.available_memory),
            readiness=readiness,
        )
        self.operations = Operations(
            settings=settings,
            backend=backend,
            secrets=secrets,
            registry=self.registry,
            engine=self.engine,
            publisher=publisher,
            journal=self.journal,
            telemetry=self.telemetry,
            sampler=sampler,
            readiness=readiness,
            history=lambda agent_id: store.recent_events(agent_id, 20),
        )
        self.queries = Queries(
            backend=backend, registry=self.registry, engine=self.engine, sampler=sampler
        )
        # Threads follow their agents through every published event and each turn's output.
        book = ThreadBook(store, publisher)
        follower = Follower(book)
        publisher.listen(follower.hear)
        self.messaging = MessagingService(
            settings=settings,
            registry=self.registry,
            engine=self.engine,
            runner=TurnRunner(backend, self.journal),
            publisher=publisher,
            journal=self.journal,
            store=store,
            approval=book.preset_of,
            on_output=follower.output,
        )
        self.threads = Threads(
            settings=settings,
            backend=backend,
            book=book,
            workers=Workers(
                book=book,
                registry=self.registry,
                spawner=self.spawner,
                messaging=self.messaging,
                backend=backend,
                journal=self.journal,
                spawn_grace_s=settings.ready_timeout_s,
            ),
            spawner=self.spawner,
            operations=self.operations,
            messaging=self.messaging,
            registry=self.registry,
            engine=self.engine,
            journal=self.journal,
            store=store,
        )
        self.terminals = TerminalService(
            backend=backend,
            terminals=deployment.terminals,
            registry=self.registry,
            engine=self.engine,
        )
        self.executions = Executions(
            backend=backend,
            registry=self.registry,
            engine=self.engine,
            journal=self.journal,
            selector=self.selector,
        )
        self.files = FileService(
            settings=settings,
            files=deployment.files,
            registry=self.registry,
            engine=self.engine,
            journal=self.journal,
        )
        self.previews = Previews(
            ports=deployment.ports,
            registry=self.registry,
            engine=self.engine,
            ttl_s=settings.preview_ttl_s,
        )
        self.gc = GarbageCollector(
            settings=settings,
            backend=backend,
            registry=self.registry,
            engine=self.engine,
            operations=self.operations,
            selector=self.selector,
            claims=self.claims,
            warm=warm,
            pool_holds=self.pool.holds if self.pool is not None else set,
        )
        self.recovery = Recovery(
            settings=settings,
            backend=backend,
            secrets=secrets,
            registry=self.registry,
            journal=self.journal,
            publisher=publisher,
            operations=self.operations,
            claims=self.claims,
            warm=warm,
            readiness=readiness,
        )
        self.recovery.handlers["turn"] = self.messaging.recover
        self.recovery.handlers["execution"] = self.executions.recover
        self.recovery.handlers["upload"] = self.files.recover
        self.recovery.handlers["thread"] = self.threads.recover
        observer = Observer(
            registry=self.registry,
            claims=self.claims,
            secrets=secrets,
            publisher=publisher,
            sampler=sampler,
            secret_keys_in_use=self.pool.secret_keys if self.pool is not None else tuple,
        )
        self.reconciler = Reconciler(
            backend=backend,
            engine=self.engine,
            observer=observer,
            registry=self.registry,
            selector=self.selector,
            telemetry=self.telemetry,
            after_sync=self.after_sync,
            pool=self.pool,
            outages=Outages(
                registry=self.registry, publisher=publisher, stop_grace_s=settings.stop_grace_s
            ),
        )
        self.janitor = Janitor(
            settings=settings,
            backend=backend,
            registry=self.registry,
            engine=self.engine,
            operations=self.operations,
            selector=self.selector,
            take_orphans=self.recovery.take_orphans,
            heartbeats=HeartbeatWatch(
                heartbeats=deployment.heartbeats,
                registry=self.registry,
                publisher=publisher,
                interval_s=settings.heartbeat_interval_s,
            ),
        )

    def after_sync(self) -> None:
        """After each sync with the engine: settle what a crash left, then the threads."""
        self.recovery.take_orphans()
        self.threads.resync()

    async def start(self) -> None:
        await self.store.open()
        self.claims.load()
        await self.threads.load()
        self.reconciler.start()
        self.janitor.start()
        self.threads.start()
        if self.pool is not None:
            self.pool.start()

    async def stop(self) -> None:
        if self.pool is not None:
            # Idle pooled containers go with the service; claimed ones are agents.
            await self.pool.stop()
        await self.janitor.stop()
        await self.threads.stop()
        await self.messaging.close()
        await self.recovery.stop()
        if self.settings.stop_agents_on_exit:
            await self.operations.stop_all(reason="service-exit")
        await self.reconciler.stop()
        await self.deployment.close()
        await self.store.close()
