"""The dashboard at /ui in a real headless Chromium, against the live service on the real engine.

Each test drives the page as a person would (clicks, typing) and checks the outcome where it
happens: in the engine, in the API, or on the page.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.integration.conftest import PREFIX, agent_body
from tests.support.browser import chromium, chromium_problem, violations, wait_until
from tests.support.dashboard import Dashboard
from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    problem = chromium_problem()
    if problem is not None:
        pytest.fail(problem)
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(driver: WebDriver, service: ServiceProcess) -> Dashboard:
    return Dashboard(driver, service.url)


@pytest.fixture
def echo(spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str]) -> Any:
    def make(**fields: Any) -> dict[str, Any]:
        return spawn(image=agent_image("echo"), resources={"memory": "128m", "cpu": 0.5}, **fields)

    return make


def test_fleet_shows_an_agent_spawned_through_the_api_within_a_second(
    page: Dashboard, spawn: Callable[..., dict[str, Any]]
) -> None:
    page.open_fleet()
    wait_until(page.driver, lambda _: page.connection() == "live")
    agent = spawn(role="reviewer")
    answered = time.monotonic()
    page.wait_row_status(agent["id"], "ready", timeout_s=1.0)
    assert time.monotonic() - answered < 1.0
    row = page.row(agent["id"])
    assert row is not None
    cells = {
        cell.get_attribute("data-column"): cell.get_attribute("textContent")
        for cell in row.find_elements(By.CSS_SELECTOR, "td")
    }
    assert cells["type"] == "custom"
    assert cells["role"] == "reviewer"
    assert agent["name"] in (cells["name"] or "")
    # CPU and memory in use (sent on the event stream for rows on screen) against the limits
    # it was given (64m and 0.25 cores in agent_body).
    memory = f'tr[data-key="agent:{agent["id"]}"] td[data-column="memory"]'
    cpu = f'tr[data-key="agent:{agent["id"]}"] td[data-column="cpu"]'
    wait_until(
        page.driver, lambda _: re.fullmatch(r"[0-9.]+ (B|KiB|MiB) / 64 MiB", page.text(memory))
    )
    assert re.fullmatch(r"[0-9.]+% of 0.25 cpu", page.text(cpu))


def test_cpu_and_memory_come_on_the_event_stream_with_no_request_per_agent(
    page: Dashboard, spawn: Callable[..., dict[str, Any]]
) -> None:
    """The fleet names the agents of its rows on screen to the event stream (watch_metrics) and
    the service sends their metrics every few seconds; an agent's chart does the same for its
    agent. No metrics request leaves the page, in either view."""
    agents = [spawn() for _ in range(3)]
    page.open_fleet()
    for agent in agents:
        memory = f'tr[data-key="agent:{agent["id"]}"] td[data-column="memory"]'
        wait_until(
            page.driver,
            lambda _, m=memory: re.fullmatch(r"[0-9.]+ (B|KiB|MiB) / 64 MiB", page.text(m)),  # type: ignore[misc]
            15,
            explain=page.describe,
        )
    # The same document: its resource timings cover both views.
    page.script("location.hash = arguments[0]", f"#/agents/{agents[0]['id']}")
    # The agent's page is a module loaded on the way: no chart until it is there.
    points = (
        "const line = document.querySelector('.chart polyline.memory');"
        "return line ? line.getAttribute('points') : ''"
    )
    wait_until(page.driver, lambda _: len(page.script(points).split()) >= 2, 15)
    assert "64 MiB" in page.text('[data-test="metrics-now"]')
    reads = page.script(
        "return performance.getEntriesByType('resource')"
        ".filter((e) => new URL(e.name).pathname.endsWith('/metrics')).map((e) => e.name)"
    )
    assert reads == []


def test_a_stop_from_the_page_stops_and_removes_the_agent(
    page: Dashboard, spawn: Callable[..., dict[str, Any]], engine: Engine, api: httpx.Client
) -> None:
    agent = spawn()
    page.open_fleet()
    page.wait_row_status(agent["id"], "ready")
    stop = page.find(f'tr[data-key="agent:{agent["id"]}"] button[data-action="stop"]')
    assert stop is not None
    stop.click()
    # The first click only arms the button: nothing is stopped yet.
    assert stop.get_attribute("data-armed") == "yes"
    assert engine.inspect(agent["containerName"]) is not None
    stop.click()
    poll(lambda: engine.inspect(agent["containerName"]), lambda c: c is None, timeout_s=30)
    assert api.get(f"/agents/{agent['id']}").status_code == 404
    wait_until(page.driver, lambda _: page.row(agent["id"]) is None)


def test_restart_from_the_page_restarts_the_agent(
    page: Dashboard, spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    agent = spawn()
    started = engine.inspect(agent["containerName"])["State"]["StartedAt"]  # type: ignore[index]
    page.open_fleet()
    page.wait_row_status(agent["id"], "ready")
    restart = page.find(f'tr[data-key="agent:{agent["id"]}"] button[data-action="restart"]')
    assert restart is not None
    restart.click()
    poll(
        lambda: engine.inspect(agent["containerName"])["State"]["StartedAt"],  # type: ignore[index]
        lambda now: now != started,
        timeout_s=30,
    )
    wait_until(
        page.driver, lambda _: page.text('[data-test="notice"]') == f"Restarted {agent['id']}.", 30
    )
    page.wait_row_status(agent["id"], "ready")


def test_a_thread_is_listed_beside_its_agent_and_a_stop_from_the_page_ends_it(
    page: Dashboard, api: httpx.Client, engine: Engine, agent_image: Callable[[str], str]
) -> None:
    execution_id = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    thread_id = f"{execution_id}-thread-0"
    spawn = {
        "id": thread_id,
        "executionId": execution_id,
        "name": "Engineer 1",
        "agentType": "custom",
        "image": agent_image("echo"),
        "objective": "Summarise the task.",
        "role": "engineer",
        "resources": {"memory": "128m", "cpu": 0.5},
    }
    row = f'tr[data-key="thread:{thread_id}"]'
    try:
        page.open_fleet()
        response = api.post("/api/threads", json=spawn)
        assert response.status_code == 201, response.text
        # On the page from the thread's own events, then from the list on a new load.
        wait_until(page.driver, lambda _: page.find(row) is not None, 10)
        live = ("ready", "running", "idle", "waiting")
        status = f"{row} td[data-column='status']"
        wait_until(page.driver, lambda _: page.text(status) in live, 60, explain=page.describe)
        page.open_fleet()
        assert page.text(status) in live
        assert page.text(f"{row} td[data-column='type']") == "thread · custom"
        assert page.text(f"{row} td[data-column='role']") == "engineer"
        link = page.find(f"{row} td[data-column='name'] a")
        assert link is not None and link.get_attribute("textContent") == "Engineer 1"
        assert (link.get_attribute("href") or "").endswith(f"#/agents/{thread_id}")
        # Its agent has a row of its own; a thread has no Restart.
        assert page.row(thread_id) is not None
        restart = page.find(f'{row} button[data-action="restart"]')
        assert restart is not None and not restart.is_displayed()
        stop = page.find(f'{row} button[data-action="stop"]')
        assert stop is not None
        stop.click()
        stop.click()
        # An ended thread stays listed, stopped; its agent is gone from the engine and the page.
        wait_until(page.driver, lambda _: page.text(status) == "stopped", 30)
        assert api.get(f"/api/threads/{thread_id}").json()["status"] == "stopped"
        poll(lambda: engine.inspect(f"parallax-{thread_id}"), lambda c: c is None, timeout_s=30)
        wait_until(page.driver, lambda _: page.row(thread_id) is None, 10)
    finally:
        engine.remove_container(f"parallax-{thread_id}")


def test_the_spawn_form_spawns_an_agent(page: Dashboard, api: httpx.Client, engine: Engine) -> None:
    from tests.support.images import AGENT_IMAGE

    name = f"form-{uuid.uuid4().hex[:8]}"
    page.open_fleet()
    page.find("details.spawn-box summary").click()  # type: ignore[union-attr]
    form = page.find("form.spawn")
    assert form is not None
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.NAME, "id").send_keys(name)
    form.find_element(By.CSS_SELECTOR, "select[name=type] option[value=custom]").click()
    form.find_element(By.NAME, "image").send_keys(AGENT_IMAGE)
    form.find_element(By.NAME, "memory").send_keys("48m")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    try:
        wait_until(page.driver, lambda _: form.get_attribute("data-state") == "spawned", 60)
        handle = api.get(f"/agents/{name}").json()
        assert handle["status"] == "ready"
        assert handle["resources"]["memoryBytes"] == 48 * 1024 * 1024
        page.wait_row_status(name, "ready")
    finally:
        engine.remove_container(f"parallax-{name}")


def test_the_spawn_form_shows_the_services_refusal(page: Dashboard) -> None:
    page.open_fleet()
    page.find("details.spawn-box summary").click()  # type: ignore[union-attr]
    form = page.find("form.spawn")
    assert form is not None
    form.find_element(By.NAME, "name").send_keys("refused")
    form.find_element(By.NAME, "memory").send_keys("lots")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(page.driver, lambda _: form.get_attribute("data-state") == "error")
    assert page.text("form.spawn .form-status").startswith("VALIDATION_ERROR: ")


def test_filter_and_sort(page: Dashboard, spawn: Callable[..., dict[str, Any]]) -> None:
    tag = uuid.uuid4().hex[:6]
    first = spawn(name=f"b-{tag}", role=f"zeta-{tag}")
    second = spawn(name=f"a-{tag}", role=f"alpha-{tag}")
    page.open_fleet()
    page.wait_row_status(first["id"], "ready")
    page.find('[data-test="filter"]').send_keys(tag)  # type: ignore[union-attr]

    def shown() -> list[str]:
        rows = page.driver.find_elements(By.CSS_SELECTOR, "table.fleet tbody tr")
        return [str(r.get_attribute("data-key")) for r in rows]

    wait_until(page.driver, lambda _: len(shown()) == 2)
    assert shown() == [f"agent:{second['id']}", f"agent:{first['id']}"]  # by name
    page.find('button[data-sort="role"]').click()  # type: ignore[union-attr]
    page.find('button[data-sort="role"]').click()  # type: ignore[union-attr]  # descending
    wait_until(page.driver, lambda _: shown() == [f"agent:{first['id']}", f"agent:{second['id']}"])
    page.find('[data-test="filter"]').send_keys("-no-such-agent")  # type: ignore[union-attr]
    wait_until(page.driver, lambda _: shown() == [])


def test_the_terminal_runs_a_command_and_shows_its_output(
    page: Dashboard, echo: Callable[..., dict[str, Any]]
) -> None:
    agent = echo()
    page.open_agent(agent["id"])
    page.find('[data-test="terminal-open"]').click()  # type: ignore[union-attr]
    wait_until(page.driver, lambda _: page.text('[data-test="terminal-state"]') == "connected", 15)
    keys = page.find(".xterm-helper-textarea")
    assert keys is not None
    keys.send_keys("echo dash-$((6*7))\n")
    wait_until(page.driver, lambda _: "dash-42" in page.text(".xterm-rows"), 15)
    # The typed line itself is on screen too (the PTY echoes it) and the result on its own line.
    rows = [
        r.get_attribute("textContent")
        for r in page.driver.find_elements(By.CSS_SELECTOR, ".xterm-rows > div")
    ]
    assert any(r and r.strip() == "dash-42" for r in rows), rows


def test_a_sent_task_and_its_answer_appear(
    page: Dashboard, echo: Callable[..., dict[str, Any]], api: httpx.Client
) -> None:
    agent = echo()
    page.open_agent(agent["id"])
    message = f"hello from the page {uuid.uuid4().hex[:6]}"
    page.find('[data-test="task"]').send_keys(message)  # type: ignore[union-attr]
    page.find("form.send button[type=submit]").click()  # type: ignore[union-attr]
    answer = '[data-test="messages"] article[data-direction="outbound"] pre'
    wait_until(page.driver, lambda _: page.text(answer) == message, 30)
    assert page.text('[data-test="messages"] article[data-direction="inbound"] pre') == message
    stored = api.get(f"/agents/{agent['id']}/messages").json()["messages"]
    assert [m["content"] for m in stored] == [message, message]


HOSTILE = (
    '<img src=x onerror="window.__pwned=1">',
    "</script><script>window.__pwned=2</script>",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07",
)


def test_hostile_agent_output_is_shown_as_text_and_runs_nothing(
    page: Dashboard, spawn: Callable[..., dict[str, Any]], echo: Callable[..., dict[str, Any]]
) -> None:
    printer = spawn(
        role=HOSTILE[0],
        command=[
            "/bin/sh",
            "-c",
            'printf "%s\\n" "$0" "$1" "$2"; touch /tmp/ready; exec sleep 100000',
            *HOSTILE,
        ],
    )
    talker = echo()
    page.open_fleet()
    page.wait_row_status(printer["id"], "ready")
    role = page.text(f'tr[data-key="agent:{printer["id"]}"] td[data-column="role"]')
    assert role == HOSTILE[0]
    # The conversation: the echo agent answers with the hostile text itself.
    page.open_agent(talker["id"])
    page.find('[data-test="task"]').send_keys("\n".join(HOSTILE[:2]))  # type: ignore[union-attr]
    page.find("form.send button[type=submit]").click()  # type: ignore[union-attr]
    answer = '[data-test="messages"] article[data-direction="outbound"] pre'
    wait_until(page.driver, lambda _: HOSTILE[1] in page.text(answer), 30)
    assert page.text(answer) == "\n".join(HOSTILE[:2])
    # The logs: markup and escape sequences as visible text (ESC as its symbol).
    page.open_agent(printer["id"])
    wait_until(
        page.driver,
        lambda _: "window.__pwned=2" in page.text('[data-test="logs"]'),
        30,
        explain=page.describe,
    )
    logs = [
        line.get_attribute("textContent")
        for line in page.driver.find_elements(By.CSS_SELECTOR, '[data-test="logs"] .line')
    ]
    assert HOSTILE[0] in logs and HOSTILE[1] in logs
    assert "\u241b[31mred\u241b[0m \u241b]0;title\u2407" in logs
    for view in (f"#/agents/{talker['id']}", "#/"):
        page.driver.get(f"{page.base_url}/ui/{view}")
        page.wait_rendered()
        assert page.script("return document.querySelectorAll('img, main script').length") == 0
        assert page.script("return window.__pwned === undefined")
        assert [v for v in violations(page.driver) if v["directive"].startswith("script")] == []


def test_the_page_asks_for_the_token_once_and_keeps_it_for_the_tab(
    driver: WebDriver, start_service: Callable[..., ServiceProcess]
) -> None:
    token = "tok-" + uuid.uuid4().hex
    service = start_service({"PARALLAX_API_TOKEN": token}, wait_healthy=False)
    poll(
        lambda: httpx.get(service.url + "/health", headers={"Authorization": f"Bearer {token}"}),
        lambda r: r.status_code == 200 and r.json()["runtime"]["synced"],
        timeout_s=30,
    )
    page = Dashboard(driver, service.url)
    driver.get(service.url + "/ui/")
    field = wait_until(driver, lambda _: page.find('[data-test="token"]'), 30)
    assert field is not None
    field.send_keys("wrong-token\n")
    wait_until(
        driver, lambda _: page.text("form.token .form-status") == "The service refused this token."
    )
    field.clear()
    field.send_keys(token + "\n")
    page.wait_rendered()
    # The event WebSocket carried the token in its subprotocol and is open.
    wait_until(driver, lambda _: page.connection() == "live")
    assert page.script("return sessionStorage.length") == 1
    assert page.script("return localStorage.length") == 0
    driver.refresh()
    page.wait_rendered()
    assert page.find('[data-test="token"]') is None
    wait_until(driver, lambda _: page.connection() == "live")
    page.script("sessionStorage.clear()")


def test_the_fleet_resyncs_after_the_event_stream_comes_back(
    driver: WebDriver, start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    from tests.integration.conftest import agent_body

    service = start_service()
    page = Dashboard(driver, service.url)
    kept = httpx.post(service.url + "/agents", json=agent_body(), timeout=120).json()
    gone = httpx.post(service.url + "/agents", json=agent_body(), timeout=120).json()
    page.open_fleet()
    page.wait_row_status(gone["id"], "ready")
    wait_until(driver, lambda _: page.connection() == "live")
    service.stop()
    wait_until(driver, lambda _: page.connection() in ("reconnecting", "connecting"))
    # While the service is down, one agent goes away: no event can tell the page.
    engine.remove_container(gone["containerName"])
    service.start()
    wait_until(driver, lambda _: page.connection() == "live", 30)
    wait_until(driver, lambda _: page.row(gone["id"]) is None, 15)
    assert page.row_status(kept["id"]) == "ready"
    engine.remove_container(kept["containerName"])


def test_an_answer_given_while_the_event_stream_was_down_appears_once_it_is_back(
    driver: WebDriver,
    start_service: Callable[..., ServiceProcess],
    agent_image: Callable[[str], str],
    engine: Engine,
) -> None:
    service = start_service()
    body = agent_body(image=agent_image("echo"), resources={"memory": "128m", "cpu": 0.5})
    agent = httpx.post(service.url + "/agents", json=body, timeout=120).json()
    page = Dashboard(driver, service.url)
    driver.execute_cdp_cmd("Network.enable", {})
    try:
        page.open_agent(agent["id"])
        wait_until(driver, lambda _: page.connection() == "live")
        # The page's event stream is cut (and kept from coming back) while its other requests
        # go on: the task is sent and answered with no event able to reach the page.
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/ws"]})
        service.stop()
        wait_until(driver, lambda _: page.connection() in ("reconnecting", "connecting"))
        service.start()
        message = f"answered unseen {uuid.uuid4().hex[:6]}"
        sent = httpx.post(
            f"{service.url}/agents/{agent['id']}/send",
            json={"message": message, "expectResponse": True, "timeout": 30000},
            timeout=60,
        )
        assert sent.json()["response"]["content"] == message, sent.text
        answer = '[data-test="messages"] article[data-direction="outbound"] pre'
        assert page.text(answer) == ""
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        wait_until(driver, lambda _: page.connection() == "live", 30)
        wait_until(driver, lambda _: page.text(answer) == message, 15)
        shown = driver.find_elements(By.CSS_SELECTOR, '[data-test="messages"] article')
        assert len(shown) == 2  # the task and its answer, each once
    finally:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        driver.execute_cdp_cmd("Network.disable", {})
        engine.remove_container(agent["containerName"])


def _ticks(page: Dashboard) -> list[int]:
    """The numbers of the ``tick-N`` lines the logs panel shows, in order."""
    lines = page.driver.find_elements(By.CSS_SELECTOR, '[data-test="logs"] .line')
    return [
        int(t[5:])
        for t in (x.get_attribute("textContent") or "" for x in lines)
        if t.startswith("tick-")
    ]


def test_the_agent_page_follows_logs_and_charts_metrics(
    page: Dashboard, spawn: Callable[..., dict[str, Any]]
) -> None:
    agent = spawn(
        command=[
            "/bin/sh",
            "-c",
            "touch /tmp/ready; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done",
        ]
    )
    page.open_agent(agent["id"])

    ticks = partial(_ticks, page)

    first = wait_until(page.driver, lambda _: ticks())

    # Followed: lines printed after the page opened keep arriving, in order, none repeated.
    def five_more() -> list[int] | None:
        seen = ticks()
        return seen if seen and seen[-1] >= first[-1] + 5 else None

    later = wait_until(page.driver, lambda _: five_more(), 15)
    assert later is not None
    assert later == list(range(later[0], later[-1] + 1))
    # The chart gains a point per sample (every 2 s while the page is open, on the stream).
    points = "return document.querySelector('.chart polyline.memory').getAttribute('points')"
    wait_until(page.driver, lambda _: len(page.script(points).split()) >= 2, 15)
    assert "memory" in page.text('[data-test="metrics-now"]')


def test_followed_logs_broken_off_resume_where_they_broke(
    driver: WebDriver, start_service: Callable[..., ServiceProcess], engine: Engine
) -> None:
    """A followed stream broken off (the service restarted; or Chrome failing the requests in
    flight when the host's interfaces change, as Docker's do at each container start) is
    followed again on its own, from where it broke: no line shown twice, none lost."""
    service = start_service()
    response = httpx.post(
        service.url + "/agents",
        json=agent_body(
            command=[
                "/bin/sh",
                "-c",
                "touch /tmp/ready; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done",
            ]
        ),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    agent = response.json()
    page = Dashboard(driver, service.url)
    try:
        page.open_agent(agent["id"])

        ticks = partial(_ticks, page)

        wait_until(driver, lambda _: len(ticks()) >= 3, 15, explain=page.describe)
        service.stop()
        wait_until(
            driver,
            lambda _: page.text('[data-test="logs-state"]') == "reconnecting…",
            15,
            explain=page.describe,
        )
        broke_at = ticks()[-1]
        service.start()

        def twenty_more() -> list[int] | None:
            seen = ticks()
            return seen if seen and seen[-1] >= broke_at + 20 else None

        later = wait_until(driver, lambda _: twenty_more(), 30, explain=page.describe)
        assert later is not None
        assert later == list(range(later[0], later[-1] + 1))
        assert page.text('[data-test="logs-state"]') == "following"
    finally:
        engine.remove_container(agent["containerName"])


def test_a_page_whose_code_failed_to_load_loads_itself_once_more(page: Dashboard) -> None:
    """A module lost to a dropped request fails the whole page: it is loaded once more, and
    if that fails too, it says so instead of reloading in a loop."""
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/ui/js/fleet.js"]})
    try:
        page.driver.get(page.base_url + "/ui/")
        wait_until(
            page.driver,
            lambda _: page.script("return document.getElementById('main').dataset.failed"),
            15,
            explain=page.describe,
        )
        kind = page.script("return performance.getEntriesByType('navigation')[0].type")
        assert kind == "reload"
        assert "could not be loaded" in page.text("#main")
    finally:
        page.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        page.driver.execute_cdp_cmd("Network.disable", {})
    page.open_fleet()


def test_model_usage_and_control_characters_are_shown_as_documented(page: Dashboard) -> None:
    page.open_fleet()
    script = """
    const done = arguments[arguments.length - 1];
    Promise.all([import("/ui/js/fleet.js"), import("/ui/js/dom.js")]).then(([fleet, dom]) => done([
      fleet.usageText({costUsd: 0.0123, inputTokens: 1000, outputTokens: 234}),
      fleet.usageText(undefined),
      dom.visible("a\\u001b[31mb\\u0007\\tc\\nd\\u007f"),
      dom.bytes(64 * 1024 * 1024),
      dom.duration(3725),
    ]));
    """
    shown = page.driver.execute_async_script(script)
    assert shown == [
        "$0.0123 · 1,234 tokens",
        "\u2013",
        "a\u241b[31mb\u2407\tc\nd\u2421",
        "64 MiB",
        "1h 2m",
    ]
