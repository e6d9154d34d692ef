"""A 3-node Docker Swarm made on this machine for the tests, and taken down after.

Each node is a dockerd of Debian's docker.io in a network namespace of its own (and a UTS
namespace, for its host name), with its own socket, data and exec roots and cgroup parent, so
nothing of the machine's own engine is touched. The nodes are joined by a bridge in one more
namespace (the hub), which keeps the host's firewall out of their traffic; one veth from the
host into the hub lets the service and the tests reach the nodes' engines (mutual TLS, as in
production) and the cluster's registry, which listens on the host's end of that veth. All
three nodes are managers, so the runtime can be restarted against another one.

The node daemons are configured by ``scripts/swarm.sh daemon-json`` exactly as docs/swarm.md
tells production nodes, plus what a node sharing a machine needs (its own roots, no bridge or
iptables of its own). Whatever a run leaves behind (it was killed) is removed by the next one:
every cluster writes its owner's pid, and ``reap_stale`` tears down those whose owner is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.engine import Engine
from tests.support.images import DOCKER
from tests.support.mounts import unmount_under
from tests.support.polling import poll

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "swarm.sh"
BASE = Path(tempfile.gettempdir())
ENGINE_PORT = 2376
REGISTRY_PORT = 5000
_CGROUP_FS = Path("/sys/fs/cgroup")


def _run(*argv: str, check: bool = True, timeout: float = 120) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _ip(*argv: str, check: bool = True) -> None:
    _run("ip", *argv, check=check)


@dataclass
class Node:
    index: int
    name: str
    netns: str
    address: str
    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    @property
    def cgroup_parent(self) -> str:
        return f"parallax-swarm-{self.name}"


class SwarmCluster:
    def __init__(self, tag: str, size: int = 3) -> None:
        self.tag = tag
        self.root = BASE / f"parallax-swarm-{tag}"
        self.subnet = self._free_subnet()
        self.gateway = f"{self.subnet}.1"
        self.registry = f"{self.gateway}:{REGISTRY_PORT}"
        self.tls = self.root / "tls"
        self.hub = f"pxs-{tag}-hub"
        self.host_link = f"pxs{tag}h"
        self.nodes = [
            Node(
                i,
                f"pxs-{tag}-n{i}",
                f"pxs-{tag}-n{i}",
                f"{self.subnet}.{10 + i}",
                self.root / f"n{i}",
            )
            for i in range(1, size + 1)
        ]
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @staticmethod
    def _free_subnet() -> str:
        used = _run("ip", "-4", "-o", "addr", "show")
        while True:
            subnet = f"198.18.{random.randint(10, 250)}"
            if f" {subnet}." not in used:
                return subnet

    # -- making it --------------------------------------------------------------------------

    def create(self) -> SwarmCluster:
        self.root.mkdir(mode=0o700, parents=True)
        (self.root / "owner").write_text(str(os.getpid()))
        (self.root / "names.json").write_text(
            json.dumps(
                {
                    "hub": self.hub,
                    "link": self.host_link,
                    "netns": [n.netns for n in self.nodes],
                    "cgroups": [n.cgroup_parent for n in self.nodes],
                }
            )
        )
        self._network()
        _run("bash", str(SCRIPT), "ca", str(self.tls))
        for node in self.nodes:
            _run("bash", str(SCRIPT), "node-cert", str(self.tls), node.name, node.address)
        _run("bash", str(SCRIPT), "registry", "start", str(self.root / "registry"), self.registry)
        for node in self.nodes:
            self.start_node(node.index)
        self._form()
        return self

    def _network(self) -> None:
        _ip("netns", "add", self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        _ip(
            "link", "add", self.host_link, "type", "veth", "peer", "name", "host", "netns", self.hub
        )
        _ip("-n", self.hub, "link", "set", "host", "master", "br0", "up")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        for node in self.nodes:
            port = f"n{node.index}"
            _ip("netns", "add", node.netns)
            _ip(
                "-n",
                self.hub,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                node.netns,
            )
            _ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
            _ip("-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0")
            _ip("-n", node.netns, "link", "set", "eth0", "up")
            _ip("-n", node.netns, "link", "set", "lo", "up")
            _ip("-n", node.netns, "route", "add", "default", "via", self.gateway)

    def start_node(self, index: int, without: tuple[str, ...] = ()) -> None:
        """Start the node's engine with the production daemon.json (``without`` some of its
        settings: a node configured wrong)."""
        node = self.nodes[index - 1]
        node.root.mkdir(exist_ok=True)
        config = _run(
            "bash",
            str(SCRIPT),
            "daemon-json",
            "--tls",
            str(self.tls),
            "--name",
            node.name,
            "--address",
            node.address,
            "--registry",
            self.registry,
            "--socket",
            str(node.socket),
            "--port",
            str(ENGINE_PORT),
        )
        settings = json.loads(config)
        for key in without:
            del settings[key]
        (node.root / "daemon.json").write_text(json.dumps(settings, indent=2))
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        daemon = " ".join(
            [
                "exec",
                dockerd,
                "--config-file",
                str(node.root / "daemon.json"),
                "--data-root",
                str(node.root / "data"),
                "--exec-root",
                str(node.root / "exec"),
                "--pidfile",
                str(node.pidfile),
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                f"--cgroup-parent={node.cgroup_parent}",
            ]
        )
        with (node.root / "dockerd.log").open("ab") as log:
            # nsenter, not `ip netns exec`: that would remount /sys and hide the cgroups.
            self._processes[index] = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/var/run/netns/{node.netns}",
                    "unshare",
                    "--uts",
                    "sh",
                    "-c",
                    f"hostname {node.name} && {daemon}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        poll(lambda: _answers(node.socket), bool, timeout_s=60, interval_s=0.2)

    def _form(self) -> None:
        first = self.nodes[0]
        self.docker(
            1,
            "swarm",
            "init",
            "--advertise-addr",
            first.address,
            "--listen-addr",
            f"{first.address}:2377",
            "--dispatcher-heartbeat",
            "2s",
        )
        token = self.docker(1, "swarm", "join-token", "-q", "manager").strip()
        for node in self.nodes[1:]:
            self.docker(
                node.index,
                "swarm",
                "join",
                "--token",
                token,
                "--advertise-addr",
                node.address,
                "--listen-addr",
                f"{node.address}:2377",
                f"{first.address}:2377",
            )
        poll(
            lambda: self.node_states(),
            lambda s: s == {n.name: "ready" for n in self.nodes},
            timeout_s=60,
            interval_s=0.2,
        )

    # -- using it ---------------------------------------------------------------------------

    def docker(self, index: int, *argv: str, timeout: float = 120) -> str:
        return _run(DOCKER, "-H", f"unix://{self.nodes[index - 1].socket}", *argv, timeout=timeout)

    def engine(self, index: int) -> Engine:
        return Engine(str(self.nodes[index - 1].socket))

    def node_states(self, via: int = 1) -> dict[str, str]:
        """Each node's state as a manager sees it (``via`` names the one asked)."""
        out = self.docker(
            via, "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}"
        )
        states = {}
        for line in out.splitlines():
            name, status, availability = line.split()
            states[name] = status.lower() if availability == "Active" else availability.lower()
        return states

    def load_images(self, *refs: str) -> None:
        """Copy images from the machine's engine into the first node (the manager the service
        talks to first); the service pushes them to the registry when agents need them."""
        save = subprocess.Popen([DOCKER, "save", *refs], stdout=subprocess.PIPE)
        subprocess.run(
            [DOCKER, "-H", f"unix://{self.nodes[0].socket}", "load", "-q"],
            stdin=save.stdout,
            check=True,
            capture_output=True,
            timeout=600,
        )
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0:
            raise RuntimeError(f"docker save {refs} failed")

    def service_env(self, manager: int = 1) -> dict[str, str]:
        return {
            "PARALLAX_BACKEND": "swarm",
            "DOCKER_SOCKET": str(self.nodes[manager - 1].socket),
            "PARALLAX_SWARM_TLS_DIR": str(self.tls),
            "PARALLAX_SWARM_REGISTRY": self.registry,
            "PARALLAX_SWARM_ENGINE_PORT": str(ENGINE_PORT),
        }

    def node_of(self, name: str) -> int:
        return next(n.index for n in self.nodes if n.name == name)

    def kill_node(self, index: int) -> None:
        """The node's machine fails: its engine and everything it ran are killed at once."""
        node = self.nodes[index - 1]
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(node.pidfile.read_text().strip()), signal.SIGKILL)
        process = self._processes.pop(index, None)
        if process is not None:
            process.kill()  # the same process (nsenter and unshare exec into dockerd)
            process.wait(30)
        _kill_processes_of(node.root, node.cgroup_parent)

    def stop_node(self, index: int) -> None:
        """Stop the node's engine as an operator would (its containers stop with it)."""
        self._stop_node(self.nodes[index - 1])

    def availability(self, index: int, value: str) -> None:
        """Drain (``drain``) or bring back (``active``) a node, as an operator would (again
        when a busy manager answers that the node changed meanwhile)."""
        name = self.nodes[index - 1].name
        for attempt in range(5):
            try:
                self.docker(1, "node", "update", "--availability", value, name)
                return
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(1)

    # -- taking it down ---------------------------------------------------------------------

    def destroy(self) -> None:
        # Everything goes: no engine needs to stop its containers gracefully first.
        for node in self.nodes:
            self.kill_node(node.index)
        _run("bash", str(SCRIPT), "registry", "stop", str(self.root / "registry"), check=False)
        _tear_down(self.root)

    def _stop_node(self, node: Node) -> None:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(node.pidfile.read_text().strip()), signal.SIGTERM)
        process = self._processes.pop(node.index, None)
        if process is not None:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        _kill_processes_of(node.root, node.cgroup_parent)


def _answers(socket_path: Path) -> bool:
    # A plain socket, closed on every path: the daemon is often not listening yet.
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(socket_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except OSError:
        return False


def _kill_processes_of(node_root: Path, cgroup_parent: str) -> None:
    """Every process a node left: its containers (by cgroup), its containerd and shims (by
    its exec root on their command line)."""
    pids: set[int] = set()
    for procs in _CGROUP_FS.glob(f"*/{cgroup_parent}/**/cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in procs.read_text().split())
    marker = str(node_root).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
    pids.discard(os.getpid())
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _tear_down(root: Path) -> None:
    """Remove what a cluster under ``root`` made: mounts, cgroups, namespaces, links, files."""
    names = json.loads((root / "names.json").read_text()) if (root / "names.json").exists() else {}
    unmount_under(root)
    for cgroup in names.get("cgroups", []):
        for folder in sorted(
            _CGROUP_FS.glob(f"*/{cgroup}/**/"), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                folder.rmdir()
    for netns in [*names.get("netns", []), names.get("hub")]:
        if netns:
            _ip("netns", "del", netns, check=False)
    if names.get("link"):
        _ip("link", "del", names["link"], check=False)
    shutil.rmtree(root, ignore_errors=True)


def reap_stale() -> None:
    """Tear down the clusters of test runs that died without doing it themselves."""
    for root in BASE.glob("parallax-swarm-*"):
        try:
            owner = int((root / "owner").read_text())
            os.kill(owner, 0)
            continue  # its owner still runs
        except (OSError, ValueError):
            pass
        for pidfile in root.glob("n*/docker.pid"):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        names = (
            json.loads((root / "names.json").read_text()) if (root / "names.json").exists() else {}
        )
        for node_root, cgroup in zip(
            sorted(p for p in root.glob("n[0-9]*") if p.is_dir()),
            names.get("cgroups", []),
            strict=False,
        ):
            _kill_processes_of(node_root, cgroup)
        registry = root / "registry" / "registry.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(registry.read_text().strip()), signal.SIGTERM)
        time.sleep(0.5)
        _tear_down(root)
