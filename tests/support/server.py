"""Run the real service (``parallax-docker serve``) as a subprocess for a test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """One service process with its own port, network name and log file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    def start(self, wait_healthy: bool = True, timeout_s: float = 30) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "parallax_docker.cli.main", "serve", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"service exited with {self.process.returncode}: {self.logs()[-2000:]}"
                )
            try:
                response = httpx.get(self.url + "/health", timeout=2)
                if not wait_healthy or response.status_code == 200:
                    if wait_healthy:
                        self.wait_synced(deadline - time.monotonic())
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"service did not come up: {self.logs()[-2000:]}")

    def wait_synced(self, timeout_s: float) -> None:
        """Wait until writes are accepted (the registry is in sync with the engine)."""
        deadline = time.monotonic() + max(timeout_s, 1)
        while time.monotonic() < deadline:
            response = httpx.get(self.url + "/health", timeout=2)
            if response.status_code == 200 and response.json()["runtime"]["synced"]:
                return
            time.sleep(0.05)
        raise RuntimeError("service never synced with the engine")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        code = self.process.returncode
        self.process = None
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid
