"""Screenshots of the dashboard for docs/dashboard.md, taken from a live service in Chromium.

    .venv/bin/python -m tests.support.screenshots docs/images

Starts its own service (its own instance, network and state folder), spawns a few agents of the
test image, one echo agent (``parallax/agent-echo`` must be built) and a thread on that image,
talks to the echo agent, opens its terminal, saves PNGs, and removes everything it made.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

import httpx

from tests.support.browser import chromium, wait_until
from tests.support.dashboard import Dashboard
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE, ensure_test_images
from tests.support.server import ServiceProcess

ECHO_IMAGE = "parallax/agent-echo:latest"


def take(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mark = f"shots-{uuid.uuid4().hex[:6]}"
    scratch = Path(tempfile.mkdtemp(prefix=f"parallax-{mark}-"))
    env = {
        "PARALLAX_INSTANCE": mark,
        "DOCKER_NETWORK": f"{mark}-net",
        "PARALLAX_STATE_DIR": str(scratch / "state"),
        "PARALLAX_SECRETS_DIR": str(scratch / "secrets"),
    }
    ensure_test_images()
    engine = Engine()
    service = ServiceProcess(env, scratch / "service.log").start()
    saved: list[Path] = []
    try:
        api = httpx.Client(base_url=service.url, timeout=120)
        for name, role, memory in (
            ("planner", "lead", "96m"),
            ("reviewer", "review", "64m"),
            ("tester", "qa", "64m"),
        ):
            body = {"id": name, "name": name, "type": "custom", "image": AGENT_IMAGE, "role": role}
            api.post(
                "/agents", json={**body, "resources": {"memory": memory, "cpu": 0.25}}
            ).raise_for_status()
        api.post(
            "/agents",
            json={
                "id": "echo",
                "name": "echo",
                "type": "custom",
                "image": ECHO_IMAGE,
                "role": "helper",
                "resources": {"memory": "128m", "cpu": 0.5},
            },
        ).raise_for_status()
        api.post(
            "/threads",
            json={
                "id": "review-1-thread-0",
                "executionId": "review-1",
                "name": "Engineer 1",
                "agentType": "custom",
                "image": ECHO_IMAGE,
                "objective": "Summarise the change.",
                "role": "engineer",
                "resources": {"memory": "128m", "cpu": 0.5},
            },
        ).raise_for_status()
        api.post(
            "/agents/echo/send", json={"message": "Summarise README.md", "expectResponse": True}
        )
        with chromium(1400, 900) as driver:
            page = Dashboard(driver, service.url)
            page.open_fleet()
            # Every row's metrics read (a dash until then; the limit alone already says MiB).
            wait_until(
                driver,
                lambda _: page.script(
                    "const cells = [...document.querySelectorAll('td[data-column=\"memory\"]')];"
                    "return cells.length > 0 && cells.every((c) => /^[0-9]/.test(c.textContent))"
                ),
            )
            saved.append(folder / "dashboard-fleet.png")
            driver.save_screenshot(str(saved[-1]))
            page.open_agent("echo")
            wait_until(
                driver,
                lambda _: page.text('[data-test="messages"] article[data-direction="outbound"]'),
            )
            page.find('[data-test="terminal-open"]').click()  # type: ignore[union-attr]
            wait_until(driver, lambda _: page.text('[data-test="terminal-state"]') == "connected")
            page.find(".xterm-helper-textarea").send_keys("ls -la /workspace && id\n")  # type: ignore[union-attr]
            wait_until(driver, lambda _: "uid=" in page.text(".xterm-rows"))
            wait_until(
                driver,
                lambda _: page.script(
                    "return document.querySelectorAll('.chart polyline.cpu[points*=\",\"]').length"
                ),
                15,
            )
            driver.set_window_size(1400, 1500)
            page.script("window.scrollTo(0, 0)")
            saved.append(folder / "dashboard-agent.png")
            driver.save_screenshot(str(saved[-1]))
    finally:
        for container in engine.containers(f"parallax.instance={mark}"):
            engine.remove_container(container["Id"])
        service.stop()
        engine.remove_network(f"{mark}-net")
        engine.close()
    return saved


if __name__ == "__main__":
    for path in take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images")):
        print("saved", path)
