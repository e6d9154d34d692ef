"""The raw baseline: the Docker Engine API used directly over its Unix socket with aiohttp (the
HTTP library under the service's own engine client), the same image, the same limits and
hardening, and the same readiness wait.

Nothing here imports the service's code: the baseline is what a careful caller of the engine
would do by hand, so that the service's own cost is what the ratios show.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

# The service's readiness schedule (src/parallax_docker/runtime/readiness.py): probe at once,
# then after 20 ms, doubling up to 0.5 s.
FIRST_DELAY_S = 0.02
MAX_DELAY_S = 0.5
_NS = 1_000_000_000


@dataclass(frozen=True)
class ImageFacts:
    ref: str
    user: str | None
    probe: tuple[str, ...] | None


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    nano_cpus: int
    pids: int = 512
    tmpfs_size: str = "256m"


class EngineRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"the engine answered {status}")
        self.status = status


class RawEngine:
    def __init__(self, socket_path: str = "/var/run/docker.sock", timeout_s: float = 120) -> None:
        self._socket_path = socket_path
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self._socket_path), timeout=self._timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def json(
        self,
        path: str,
        method: str = "GET",
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
    ) -> Any:
        query = {k: str(v) for k, v in (params or {}).items()}
        async with self._http().request(
            method, f"http://docker/{path}", params=query, json=data
        ) as response:
            if response.status >= 300:
                raise EngineRefused(response.status)
            body = await response.read()
        return json.loads(body) if body else None

    # -- engine facts -----------------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        return dict(await self.json("version"))

    async def info(self) -> dict[str, Any]:
        return dict(await self.json("info"))

    async def image(self, ref: str) -> ImageFacts:
        data = await self.json(f"images/{ref}/json")
        config = data.get("Config") or {}
        test = tuple((config.get("Healthcheck") or {}).get("Test") or ())
        probe: tuple[str, ...] | None = None
        if test and test[0] == "CMD":
            probe = tuple(test[1:])
        elif test and test[0] == "CMD-SHELL":
            probe = ("/bin/sh", "-c", " ".join(test[1:]))
        return ImageFacts(ref=ref, user=config.get("User") or None, probe=probe)

    # -- networks ---------------------------------------------------------------------------

    async def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        found = await self.json("networks", params={"filters": json.dumps({"name": [name]})})
        if any(net.get("Name") == name for net in found):
            return
        await self.json(
            "networks/create",
            "POST",
            data={"Name": name, "Driver": "bridge", "Labels": dict(labels), "Attachable": True},
        )

    async def remove_network(self, name: str) -> None:
        try:
            await self.json(f"networks/{name}", "DELETE")
        except EngineRefused as exc:
            if exc.status != 404:
                raise

    # -- containers -------------------------------------------------------------------------

    def container_body(
        self,
        image: ImageFacts,
        limits: Limits,
        *,
        network: str,
        aliases: Sequence[str],
        labels: Mapping[str, str],
        command: Sequence[str] | None = None,
        healthcheck_interval_s: float | None = None,
    ) -> dict[str, Any]:
        """The hardened container the service would ask for, written out by hand."""
        uid = 1000 if image.user in ("agent", "1000") else 0
        base = f"rw,nosuid,nodev,size={limits.tmpfs_size}"
        private = f"{base},uid={uid},gid={uid},mode=0700"
        body: dict[str, Any] = {
            "Image": image.ref,
            "Labels": dict(labels),
            "Env": [],
            "WorkingDir": "/workspace",
            "StopSignal": "SIGTERM",
            "StopTimeout": 10,
            "HostConfig": {
                "Memory": limits.memory_bytes,
                "MemorySwap": limits.memory_bytes,
                "NanoCpus": limits.nano_cpus,
                "PidsLimit": limits.pids,
                "ReadonlyRootfs": True,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges:true"],
                "Privileged": False,
                "Init": True,
                "Tmpfs": {
                    "/tmp": f"{base},mode=1777",
                    "/run/parallax": private,
                    "/home/agent": private,
                    "/workspace": private,
                },
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
                "NetworkMode": network,
                "RestartPolicy": {"Name": "no"},
                "IpcMode": "private",
            },
            "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": list(aliases)}}},
        }
        if command is not None:
            body["Cmd"] = list(command)
        if healthcheck_interval_s is not None and image.probe is not None:
            body["Healthcheck"] = {
                "Test": ["CMD", *image.probe],
                "Interval": int(healthcheck_interval_s * _NS),
                "Timeout": 3 * _NS,
                "Retries": 3,
            }
        return body

    async def create(self, name: str, body: Mapping[str, Any]) -> str:
        created = await self.json("containers/create", "POST", params={"name": name}, data=body)
        return str(created["Id"])

    async def start(self, container_id: str) -> None:
        await self.json(f"containers/{container_id}/start", "POST")

    async def inspect(self, container_id: str) -> dict[str, Any]:
        return dict(await self.json(f"containers/{container_id}/json"))

    async def exec_code(self, container_id: str, argv: Sequence[str]) -> int:
        created = await self.json(
            f"containers/{container_id}/exec",
            "POST",
            data={"Cmd": list(argv), "AttachStdout": True, "AttachStderr": True},
        )
        exec_id = created["Id"]
        async with self._http().post(
            f"http://docker/exec/{exec_id}/start", json={"Detach": False, "Tty": False}
        ) as response:
            if response.status >= 300:
                raise EngineRefused(response.status)
            await response.read()  # the output, to its end
        code = (await self.json(f"exec/{exec_id}/json")).get("ExitCode")
        return int(code) if code is not None else -1

    async def wait_ready(
        self, container_id: str, probe: tuple[str, ...] | None, timeout_s: float = 60
    ) -> None:
        """The service's readiness wait, by hand: state, then the image's own check."""
        deadline = time.monotonic() + timeout_s
        delay = FIRST_DELAY_S
        while True:
            state = (await self.inspect(container_id))["State"]
            if not state.get("Running"):
                raise RuntimeError(f"container exited with {state.get('ExitCode')}")
            if probe is None or await self.exec_code(container_id, probe) == 0:
                return
            if time.monotonic() + delay > deadline:
                raise TimeoutError("the readiness probe never passed")
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)

    async def wait_docker_healthy(self, container_id: str, timeout_s: float = 120) -> None:
        """Wait for Docker's own health status instead (for the readiness comparison)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = (await self.inspect(container_id))["State"]
            if (state.get("Health") or {}).get("Status") == "healthy":
                return
            if not state.get("Running"):
                raise RuntimeError("container exited")
            await asyncio.sleep(0.01)
        raise TimeoutError("Docker never reported the container healthy")

    async def spawn(self, name: str, body: Mapping[str, Any], probe: tuple[str, ...] | None) -> str:
        """create + start + readiness: the raw counterpart of POST /agents."""
        container_id = await self.create(name, body)
        try:
            await self.start(container_id)
            await self.wait_ready(container_id, probe)
        except BaseException:
            await asyncio.shield(self.remove(container_id))
            raise
        return container_id

    async def stop(self, container_id: str, grace_s: int = 10) -> None:
        try:
            await self.json(f"containers/{container_id}/stop", "POST", params={"t": grace_s})
        except EngineRefused as exc:
            if exc.status != 304:
                raise

    async def stop_and_remove(self, container_id: str, grace_s: int = 10) -> None:
        """stop + remove: the raw counterpart of DELETE /agents/{id}."""
        await self.stop(container_id, grace_s)
        await self.remove(container_id)

    async def kill(self, container_id: str) -> None:
        await self.json(f"containers/{container_id}/kill", "POST", params={"signal": "SIGKILL"})

    async def remove(self, container_id: str) -> None:
        try:
            await self.json(f"containers/{container_id}", "DELETE", params={"force": "1", "v": "1"})
        except EngineRefused as exc:
            if exc.status not in (404, 409):
                raise

    async def containers(self, *labels: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": list(labels)})
        return list(await self.json("containers/json", params={"all": "1", "filters": filters}))

    async def remove_labelled(self, *labels: str, concurrency: int = 16) -> int:
        found = await self.containers(*labels)
        gate = asyncio.Semaphore(concurrency)

        async def one(container_id: str) -> None:
            async with gate:
                await self.remove(container_id)

        await asyncio.gather(*(one(c["Id"]) for c in found))
        return len(found)

    # -- stats and events -------------------------------------------------------------------

    async def stats(self, container_id: str, one_shot: bool) -> dict[str, Any]:
        params = {"stream": "0"}
        if one_shot:
            params["one-shot"] = "1"
        return dict(await self.json(f"containers/{container_id}/stats", params=params))

    async def watch_events(self, label: str) -> AsyncIterator[tuple[float, dict[str, Any]]]:
        """(arrival time, event) for container events carrying ``label``."""
        filters = json.dumps({"type": ["container"], "label": [label]})
        async with self._http().get(
            "http://docker/events",
            params={"filters": filters},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as response:
            async for line in response.content:
                if line.strip():
                    yield time.perf_counter(), json.loads(line)
