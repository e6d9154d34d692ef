"""Egress policies on the real engine: the shared network, ``internal`` and ``none``.

No traffic goes to any outside address. "The outside" is simulated on this host: a network
namespace joined to the host by a veth pair, with an HTTP server on an address from the
benchmarking range (198.18.0.0/15) that no agent network contains. Reaching it takes the same
path as reaching the internet (routed through the host, masqueraded), so an agent that reaches it
could reach the internet, and one that cannot, cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, SESSION, agent_body, session_objects
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

Spawn = Callable[..., dict[str, Any]]

HTTPD = (
    "trap 'exit 0' TERM; mkdir -p /tmp/www && echo served-by-$(hostname) > /tmp/www/index.html "
    "&& touch /tmp/ready && exec httpd -f -p 8080 -h /tmp/www"
)


@dataclass(frozen=True)
class OutsideHost:
    address: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def outside() -> Iterator[OutsideHost]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("simulating an outside host needs root and iproute2")
    seed = int(SESSION[:4], 16)
    third, fourth = (seed >> 8) & 0xFF, seed & 0xFC
    host_side, far_side = f"198.18.{third}.{fourth + 1}", f"198.18.{third}.{fourth + 2}"
    namespace, veth = f"{PREFIX}-out", f"pt{SESSION[:6]}a"
    peer = f"pt{SESSION[:6]}b"
    _ip("netns", "add", namespace)
    server: subprocess.Popen[bytes] | None = None
    try:
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", namespace)
        _ip("addr", "add", f"{host_side}/30", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("netns", "exec", namespace, "ip", "addr", "add", f"{far_side}/30", "dev", peer)
        _ip("netns", "exec", namespace, "ip", "link", "set", peer, "up")
        _ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        port = 18080
        listen = [sys.executable, "-m", "http.server", str(port), "--bind", far_side]
        server = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *listen],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        outside = OutsideHost(far_side, port)
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(outside.url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the simulated outside host did not come up"
            time.sleep(0.1)
        yield outside
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        subprocess.run(["ip", "link", "del", veth], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)


def _fetch(engine: Engine, container: str, url: str) -> tuple[int, str]:
    # busybox wget -T crashes; timeout(1) bounds the attempt instead.
    return engine.exec(container, "timeout", "5", "wget", "-q", "-O", "-", url)


def _internal_network() -> str:
    return f"{PREFIX}-net-internal"


# -- the shared agent network (default) ---------------------------------------------------------


def test_default_network_agent_reaches_the_outside_host(
    spawn: Spawn, engine: Engine, outside: OutsideHost
) -> None:
    # The control for the test below: the outside host is reachable by the routed path.
    handle = spawn()
    code, out = _fetch(engine, handle["containerName"], outside.url)
    assert code == 0, out


# -- internal -----------------------------------------------------------------------------------


def test_internal_agents_network_is_internal_in_the_engine(spawn: Spawn, engine: Engine) -> None:
    handle = spawn(network="internal")
    assert handle["network"] == _internal_network()
    network = engine.network(_internal_network())
    assert network is not None
    assert network["Internal"] is True
    assert network["Labels"]["parallax.managed"] == "true"
    info = engine.inspect(handle["containerName"])
    assert list(info["NetworkSettings"]["Networks"]) == [_internal_network()]  # type: ignore[index]


def test_internal_agent_cannot_reach_the_outside_host(
    spawn: Spawn, engine: Engine, outside: OutsideHost
) -> None:
    handle = spawn(network="internal")
    code, _ = _fetch(engine, handle["containerName"], outside.url)
    assert code != 0


def test_internal_agents_reach_each_other_by_name(spawn: Spawn, engine: Engine) -> None:
    server = spawn(network="internal", command=["/bin/sh", "-c", HTTPD])
    client = spawn(network="internal")
    for target in (server["name"], server["containerName"], server["id"]):
        code, out = _fetch(engine, client["containerName"], f"http://{target}:8080/")
        assert code == 0, (target, out)
        assert out.startswith("served-by-")


def test_naming_the_internal_network_gives_the_internal_network(
    spawn: Spawn, engine: Engine
) -> None:
    handle = spawn(network=_internal_network())
    assert handle["network"] == _internal_network()
    assert engine.network(_internal_network())["Internal"] is True  # type: ignore[index]


def test_a_routed_network_under_the_internal_name_is_refused(
    start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    default = f"{PREFIX}-egr"
    # A managed network that is not internal, where internal agents would land.
    engine.http.post(
        "/networks/create",
        json={"Name": f"{default}-internal", "Labels": {"parallax.managed": "true"}},
    ).raise_for_status()
    proc = start_service({"DOCKER_NETWORK": default})
    before = session_objects(engine)
    response = httpx.post(proc.url + "/agents", json=agent_body(network="internal"), timeout=60)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "NETWORK_FORBIDDEN"
    assert session_objects(engine) == before


# -- none ---------------------------------------------------------------------------------------


def test_none_agent_has_only_loopback(spawn: Spawn, engine: Engine) -> None:
    handle = spawn(network="none")
    code, out = engine.exec(handle["containerName"], "ip", "-o", "link")
    assert code == 0
    assert [line.split(":")[1].strip() for line in out.strip().splitlines()] == ["lo"]
    code, out = engine.exec(handle["containerName"], "ip", "route")
    assert (code, out.strip()) == (0, "")


def test_none_agent_cannot_reach_the_outside_host(
    spawn: Spawn, engine: Engine, outside: OutsideHost
) -> None:
    handle = spawn(network="none")
    code, _ = _fetch(engine, handle["containerName"], outside.url)
    assert code != 0
