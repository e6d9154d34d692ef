"""One model call through the gateway: check the agent's token, put the real key on the request,
forward it to the provider, pass the answer back as it arrives and count its usage.

Refusals are answered in the provider's own error format, so each CLI reports them as it would
the provider's; they never echo the token or a key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from parallax_docker.config import Settings
from parallax_docker.runtime.gateway.budgets import Overrun
from parallax_docker.runtime.gateway.keys import KeyStore
from parallax_docker.runtime.gateway.meter import Caller, Meter
from parallax_docker.runtime.gateway.providers import (
    BUDGET_STATUS,
    BY_NAME,
    DROPPED_HEADERS,
    key_headers,
    presented_token,
    refusal,
    upstream_of,
)
from parallax_docker.runtime.gateway.tokens import TokenBook
from parallax_docker.runtime.gateway.usage import UsageReader

log = logging.getLogger(__name__)

# Headers of the provider's answer that belong to one hop only.
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "trailer"})
# Who is calling, from the agent a token names and the address the call came from; None when
# that agent is not live or the call came from another container.
CallerOf = Callable[[str, str], Caller | None]
# The budget a caller has used up, if any (the gateway records and reports it).
Admit = Callable[[Caller], Overrun | None]


class Forwarder:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenBook,
        keys: KeyStore,
        meter: Meter,
        caller_of: CallerOf,
        admit: Admit,
        client: httpx.AsyncClient,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._keys = keys
        self._meter = meter
        self._caller_of = caller_of
        self._admit = admit
        self._client = client

    async def handle(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        if provider not in BY_NAME:
            return _json(b'{"error": "no such provider at the gateway", "code": "NOT_FOUND"}', 404)
        token = presented_token(request.headers, request.query_params)
        agent_id = self._tokens.agent_of(token) if token else None
        peer = request.client.host if request.client is not None else ""
        caller = self._caller_of(agent_id, peer) if agent_id is not None else None
        if caller is None:
            self._meter.refused("token")
            return _json(
                refusal(
                    provider,
                    401,
                    "GATEWAY_TOKEN_INVALID",
                    "this gateway token is not valid here (its agent has stopped, or the call "
                    "came from another container)",
                ),
                401,
            )
        key = self._keys.get(caller.agent_id, provider)
        if key is None:
            self._meter.refused("no-key", caller)
            return _json(
                refusal(
                    provider,
                    401,
                    "GATEWAY_NO_KEY",
                    f"the agent was spawned without a {provider} credential",
                ),
                401,
            )
        over = self._admit(caller)
        if over is not None:
            self._meter.refused("budget", caller)
            return _json(
                refusal(
                    provider,
                    BUDGET_STATUS[provider],
                    "BUDGET_EXCEEDED",
                    f"the {over.scope}'s model budget is spent ({over.limit} {over.allowed:g}, "
                    f"used {over.used:g}); raise it to go on",
                ),
                BUDGET_STATUS[provider],
            )
        return await self._forward(request, provider, key, caller)

    async def _forward(self, request: Request, provider: str, key: str, caller: Caller) -> Response:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in DROPPED_HEADERS
        }
        headers.update(key_headers(provider, key))
        # Usage is read from the bytes as they pass: ask for them unencoded.
        headers["accept-encoding"] = "identity"
        # The agent's token may come as ?key= (Gemini's style); it never goes upstream.
        params = httpx.QueryParams(
            [(name, value) for name, value in request.query_params.multi_items() if name != "key"]
        )
        url = f"{upstream_of(provider, self._settings)}/{request.path_params['path']}"
        upstream = self._client.build_request(
            request.method, url, params=params, headers=headers, content=await request.body()
        )
        try:
            answer = await self._client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            log.warning(
                "model provider unreachable: %s",
                type(exc).__name__,
                extra={"agent_id": caller.agent_id, "provider": provider},
            )
            self._meter.refused("upstream", caller)
            return _json(
                refusal(
                    provider, 502, "GATEWAY_UPSTREAM_UNREACHABLE", "the provider did not answer"
                ),
                502,
            )
        streamed = "text/event-stream" in answer.headers.get("content-type", "")
        reader = UsageReader(streamed)
        passed = {
            name: value
            for name, value in answer.headers.items()
            if name.lower() not in _HOP_HEADERS
        }
        if not streamed and "application/json" in answer.headers.get("content-type", ""):
            # A whole answer goes back whole: one write, no stream to drive.
            try:
                body = await answer.aread()
            except httpx.HTTPError:
                body = b""
            finally:
                await answer.aclose()
            reader.feed(body)
            self._meter.record(caller, provider, reader.close())
            return Response(body, status_code=answer.status_code, headers=passed)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    reader.feed(chunk)
                    yield chunk
            finally:
                await answer.aclose()
                self._meter.record(caller, provider, reader.close())

        return StreamingResponse(relay(), status_code=answer.status_code, headers=passed)


def _json(body: bytes, status: int) -> Response:
    return Response(body, status_code=status, media_type="application/json")
