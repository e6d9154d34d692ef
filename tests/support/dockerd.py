"""A private Docker daemon for tests that restart or stop the engine.

It runs in its own network namespace, with its own socket, data and exec roots and cgroup
parent, so restarting it disturbs nothing else on the machine (the main engine keeps serving the
rest of the suite, its bridges and iptables rules untouched). Images are copied in from the main
engine.

With ``live_restore`` the daemon runs with ``--live-restore`` in a named network namespace that
outlives it (``ip netns``), so that containers left running across a restart keep their network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.images import DOCKER
from tests.support.mounts import unmount_under

# Containers removed per `docker rm` call when a private engine is torn down.
_REMOVE_BATCH = 8


class PrivateDockerd:
    def __init__(self, root: Path, *, live_restore: bool = False) -> None:
        self.root = root
        self.live_restore = live_restore
        # A name of its own: ip netns names are global on the host.
        self.netns = f"pdd-{os.getpid()}-{root.name}" if live_restore else None
        self.socket = root / "docker.sock"
        self.pidfile = root / "docker.pid"
        self.log = root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def answers(self) -> bool:
        """A new connection to the daemon's socket gets an answer to a ping."""
        # A plain socket, closed on every path: the daemon is often not listening yet.
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return b" 200 " in sock.recv(64)
        except OSError:
            return False

    def _namespace(self) -> list[str]:
        """The command that runs dockerd in its own network namespace: with --bridge=none a
        daemon deletes the host's docker0 at start, which would break the main engine's."""
        if self.netns is None:
            return ["unshare", "--net", "--fork", "--kill-child"]
        if not Path(f"/run/netns/{self.netns}").exists():
            subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
            subprocess.run(
                ["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True, capture_output=True
            )
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--"]

    def start(self, timeout_s: float = 60) -> None:
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *self._namespace(),
                    dockerd,
                    "-H",
                    f"unix://{self.socket}",
                    "--data-root",
                    str(self.root / "data"),
                    "--exec-root",
                    str(self.root / "exec"),
                    "--pidfile",
                    str(self.pidfile),
                    "--bridge=none",
                    "--iptables=false",
                    "--ip-masq=false",
                    f"--cgroup-parent=parallax-test-{os.getpid()}",
                    *(["--live-restore"] if self.live_restore else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private dockerd did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def begin_stop(self) -> None:
        """Ask dockerd to shut down, and return at once (it stops its containers meanwhile)."""
        if self.process is None:
            return
        # Signal dockerd itself (unshare does not pass signals on), so that it shuts down
        # gracefully: its containers stop and its pid file goes.
        try:
            os.kill(int(self.pidfile.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 60) -> None:
        if self.process is None:
            return
        self.begin_stop()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def load_images(self, *refs: str) -> None:
        save = subprocess.Popen([DOCKER, "save", *refs], stdout=subprocess.PIPE)
        subprocess.run(
            [DOCKER, "-H", f"unix://{self.socket}", "load", "-q"],
            stdin=save.stdout,
            check=True,
            capture_output=True,
        )
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0:
            raise RuntimeError(f"docker save {refs} failed")

    def destroy(self) -> None:
        """Remove every container and stop the daemon; then remove its files.

        Containers go a few at a time: Docker 20.10 can deadlock in libnetwork when hundreds
        are removed at once (a `docker rm -f` of 300 ids hung for good here). A removal that
        still hangs is given up on; stopping the daemon and killing its shims ends the rest."""
        if self.process is not None:
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                ids = subprocess.run(
                    [DOCKER, "-H", f"unix://{self.socket}", "ps", "-aq"],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=60,
                ).stdout.split()
                for start in range(0, len(ids), _REMOVE_BATCH):
                    batch = ids[start : start + _REMOVE_BATCH]
                    subprocess.run(
                        [DOCKER, "-H", f"unix://{self.socket}", "rm", "-f", *batch],
                        capture_output=True,
                        check=False,
                        timeout=120,
                    )
        self.stop()
        # Shims of containers the daemon left running (a hung removal, live-restore) go too.
        subprocess.run(
            ["pkill", "-KILL", "-f", f"containerd-shim.*-address {self.root}"],
            check=False,
            capture_output=True,
        )
        if self.netns is not None:
            subprocess.run(["ip", "netns", "delete", self.netns], check=False, capture_output=True)
        # Docker 20.10 leaves its data root bind-mounted onto itself even after a clean shutdown.
        unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
