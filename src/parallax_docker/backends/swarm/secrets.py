"""Secret env delivery on a Swarm (the SecretDelivery capability): Swarm secrets.

An agent's env values and credentials become one Swarm secret per file (the NUL-separated
``env`` the project images' entrypoint loads, and ``env.sh`` for other images, as on one host:
backends/docker/secrets.py), encrypted at rest in the managers' Raft log and mounted by the
node as a file at ``/run/parallax/env`` (owner-only for a numeric user). They are never in the
service spec, whose inspect shows only the secrets' names.

``deliver`` runs before the service exists and must not wait on the manager, so it only keeps
the files' contents and answers with ``secret`` mounts; the backend's ``create`` makes the
secrets (``materialize``) and names them in the service; the contents are dropped once the
service has started (``settled``). A service's secrets are removed with it; ``prune`` removes
any that outlived their agent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import secrets as token
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from parallax_docker.backends.base import ContainerSpec, ImageInfo, MountSpec
from parallax_docker.backends.capabilities import SecretMounts
from parallax_docker.backends.docker.errors import engine_call
from parallax_docker.backends.docker.secrets import (
    ENV_FILE_NAME,
    ENV_FILE_TARGET,
    ENV_SH_NAME,
    ENV_SH_TARGET,
    PRUNE_GRACE_S,
    encode_env,
    encode_env_sh,
    loads_env_itself,
    wrapped_command,
)
from parallax_docker.backends.swarm.engine import SwarmAPI, filters
from parallax_docker.backends.swarm.translate import SecretFile, owner_labels, secret_file
from parallax_docker.errors import ConfigError, ParallaxError
from parallax_docker.resources import NAME_RE

log = logging.getLogger(__name__)

# Which agent (secrets key) a Swarm secret belongs to.
SECRET_KEY_LABEL = "parallax.secret.key"  # noqa: S105 - a label name, not a secret


class SwarmSecrets:
    def __init__(self, api: SwarmAPI, instance: str, *, grace_s: float = PRUNE_GRACE_S) -> None:
        self._api = api
        self._instance = instance
        self._grace_s = grace_s
        # key -> file name -> contents, from deliver until the service has started.
        self._pending: dict[str, dict[str, bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- SecretDelivery ---------------------------------------------------------------------

    def deliver(
        self,
        key: str,
        env: Mapping[str, str],
        image: ImageInfo,
        *,
        image_ref: str,
        command: tuple[str, ...] | None,
        uid: int | None,
    ) -> SecretMounts | None:
        if not env:
            return None
        if not NAME_RE.match(key):
            raise ValueError("not a secrets key")
        native = loads_env_itself(image)
        entrypoint, wrapped = (None, None) if native else wrapped_command(image, command, image_ref)
        files = {ENV_FILE_NAME: encode_env(env)}
        mounts = [MountSpec("secret", ENV_FILE_TARGET, f"{key}/{ENV_FILE_NAME}", read_only=True)]
        if not native:
            files[ENV_SH_NAME] = encode_env_sh(env)
            mounts.append(
                MountSpec("secret", ENV_SH_TARGET, f"{key}/{ENV_SH_NAME}", read_only=True)
            )
        self._pending[key] = files
        return SecretMounts(mounts=tuple(mounts), entrypoint=entrypoint, command=wrapped)

    def remove(self, key: str) -> None:
        """Forget the key's contents; its Swarm secrets go with its service (or ``prune``)."""
        self._pending.pop(key, None)

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Remove, in the background, the Swarm secrets of every key not in ``keep``."""
        wanted = set(keep)
        self._pending = {k: v for k, v in self._pending.items() if k in wanted}
        task = asyncio.get_running_loop().create_task(self._prune(wanted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return []

    # -- the backend's side -----------------------------------------------------------------

    async def materialize(self, spec: ContainerSpec) -> list[SecretFile]:
        """Make the Swarm secrets ``spec``'s secret mounts name; what the service mounts."""
        made: list[SecretFile] = []
        try:
            for mount in spec.mounts:
                if mount.kind != "secret":
                    continue
                key, _, name = mount.source.partition("/")
                data = self._pending.get(key, {}).get(name)
                if data is None:
                    raise ConfigError(
                        f"the secret env of agent {key} is no longer held",
                        resolution="Spawn the agent again.",
                    )
                secret_name = f"parallax-{key}-{name.replace('.', '-')}-{token.token_hex(4)}"
                labels = {**owner_labels(spec.labels), SECRET_KEY_LABEL: key}
                async with engine_call("secret", "create", secret_name):
                    secret_id = await self._api.create_secret(
                        secret_name, base64.b64encode(data).decode(), labels
                    )
                made.append(secret_file(secret_id, secret_name, mount.target, spec.user))
        except BaseException:
            await asyncio.shield(self.discard([s.secret_id for s in made]))
            raise
        return made

    def settled(self, key: str) -> None:
        """The key's service runs with its secrets: the contents are no longer needed here."""
        self._pending.pop(key, None)

    async def discard(self, secret_ids: Iterable[str]) -> None:
        for secret_id in secret_ids:
            try:
                async with engine_call("secret", "remove", secret_id):
                    await self._api.remove_secret(secret_id)
            except ParallaxError as exc:
                log.info("could not remove secret %s: %s", secret_id[:12], exc.code)

    async def _prune(self, keep: set[str]) -> None:
        query = filters(label=[SECRET_KEY_LABEL, f"parallax.instance={self._instance}"])
        with contextlib.suppress(ParallaxError):
            async with engine_call("secret", "list"):
                found = await self._api.secrets(query)
            now = datetime.now(UTC)
            stale = [
                str(s.get("ID"))
                for s in found
                if ((s.get("Spec") or {}).get("Labels") or {}).get(SECRET_KEY_LABEL) not in keep
                and _age_s(s.get("CreatedAt"), now) >= self._grace_s
            ]
            if stale:
                log.info("removing %d Swarm secret(s) of agents that no longer exist", len(stale))
                await self.discard(stale)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_NANOS = re.compile(r"(\.[0-9]{6})[0-9]+")


def _age_s(created: object, now: datetime) -> float:
    """Seconds since an engine timestamp (nanoseconds and all); 0 when it does not parse."""
    try:
        when = datetime.fromisoformat(_NANOS.sub(r"\1", str(created or "")))
    except ValueError:
        return 0.0
    return (now - (when if when.tzinfo else when.replace(tzinfo=UTC))).total_seconds()
