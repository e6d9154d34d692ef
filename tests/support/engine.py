"""A small synchronous Engine API client for tests: inspect, list, clean up.

Tests check the service's work against the engine directly, never through the service.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

SOCKET = os.environ.get("DOCKER_SOCKET", "/var/run/docker.sock")


class Engine:
    def __init__(self, socket_path: str = SOCKET) -> None:
        self.http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_path), base_url="http://docker", timeout=60
        )

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def ping(self) -> bool:
        try:
            return self.http.get("/_ping").status_code == 200
        except httpx.TransportError:
            return False

    def inspect(self, ref: str) -> dict[str, Any] | None:
        response = self.http.get(f"/containers/{ref}/json")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def containers(self, *labels: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": list(labels)})
        return list(self._get("/containers/json", all="1", filters=filters))

    def networks(self, name_prefix: str = "") -> list[dict[str, Any]]:
        return [n for n in self._get("/networks") if n["Name"].startswith(name_prefix)]

    def network(self, name: str) -> dict[str, Any] | None:
        return next((n for n in self._get("/networks") if n["Name"] == name), None)

    def volumes(self, name_prefix: str = "") -> list[dict[str, Any]]:
        found = self._get("/volumes").get("Volumes") or []
        return [v for v in found if v["Name"].startswith(name_prefix)]

    def prune_untagged_project_images(self) -> int:
        """Remove the project's images no tag names any more, and their layers; return the
        bytes freed. The suite rebuilds the images (from nothing, too): each rebuild moves a
        tag to a new image and leaves the old one behind, some 3 GB a run on the same engine.
        The layer cache of the images still tagged stays; an image in use is kept."""
        filters = json.dumps({"dangling": ["true"], "label": ["parallax.image.type"]})
        response = self.http.post("/images/prune", params={"filters": filters}, timeout=600)
        response.raise_for_status()
        return int(response.json().get("SpaceReclaimed") or 0)

    def exec(self, container: str, *argv: str, user: str = "") -> tuple[int, str]:
        created = self.http.post(
            f"/containers/{container}/exec",
            json={"Cmd": list(argv), "AttachStdout": True, "AttachStderr": True, "User": user},
        )
        created.raise_for_status()
        exec_id = created.json()["Id"]
        started = self.http.post(f"/exec/{exec_id}/start", json={"Detach": False, "Tty": False})
        started.raise_for_status()
        output = _demux(started.content).decode("utf-8", "replace")
        code = self._get(f"/exec/{exec_id}/json")["ExitCode"]
        return int(code), output

    def remove_container(self, ref: str) -> None:
        self.http.delete(f"/containers/{ref}", params={"force": "1", "v": "1"})

    def kill(self, ref: str, signal: str = "SIGKILL") -> None:
        self.http.post(f"/containers/{ref}/kill", params={"signal": signal})

    def remove_network(self, name: str) -> None:
        self.http.delete(f"/networks/{name}")

    def remove_volume(self, name: str) -> None:
        self.http.delete(f"/volumes/{name}", params={"force": "1"})

    def create_volume(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.http.post(
            "/volumes/create", json={"Name": name, "Labels": labels or {}}
        ).raise_for_status()


def _demux(raw: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "big")
        out.extend(raw[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return bytes(out)
