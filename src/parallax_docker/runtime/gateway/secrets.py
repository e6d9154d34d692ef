"""The gateway's seam in secret delivery: provider keys are taken out of an agent's env and kept
by the gateway; the agent gets its gateway token in their place and each CLI's base URL set to
the gateway. Every other value is delivered by the platform as before."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping

from parallax_docker.backends.base import ImageInfo
from parallax_docker.backends.capabilities import SecretDelivery, SecretMounts
from parallax_docker.runtime.gateway.keys import KeyStore
from parallax_docker.runtime.gateway.providers import agent_env, split_keys
from parallax_docker.runtime.gateway.tokens import TokenBook


class GatewaySecrets:
    def __init__(
        self,
        inner: SecretDelivery,
        keys: KeyStore,
        tokens: TokenBook,
        forget: Callable[[str], None],
    ) -> None:
        self._inner = inner
        self._keys = keys
        self._tokens = tokens
        # What the gateway knew of a removed agent (counts, budget raises) goes with it.
        self._forget = forget

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
        env = self.agent_env(key, env)
        return self._inner.deliver(key, env, image, image_ref=image_ref, command=command, uid=uid)

    def agent_env(self, key: str, env: Mapping[str, str]) -> Mapping[str, str]:
        """``env`` as the agent gets it, by any path (delivered files, or a pooled container's
        claim): its provider keys kept here, its gateway token in their place."""
        provider_keys = split_keys(env)
        if not provider_keys:
            return env
        self._keys.put(key, provider_keys)
        return agent_env(env, set(provider_keys), self._tokens.issue(key))

    def remove(self, key: str) -> None:
        self._keys.remove(key)
        self._forget(key)
        self._inner.remove(key)

    def prune(self, keep: Iterable[str]) -> builtins.list[str]:
        kept = list(keep)
        self._keys.prune(kept)
        return self._inner.prune(kept)
