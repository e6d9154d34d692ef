"""Previews of apps agents run: busybox httpd and a Node app with a WebSocket echo, reached
through the API (with the token) and through preview links, and a real browser showing that a
preview page can neither read the dashboard's token nor call the API (docs/files.md)."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import agent_body
from tests.support.browser import chromium, chromium_problem, wait_until
from tests.support.engine import Engine
from tests.support.images import AGENT_IMAGE
from tests.support.polling import poll
from tests.support.preview_app import APP_JS, INDEX_HTML, SERVER_JS
from tests.support.server import ServiceProcess
from tests.support.tamper import with_char_changed

TOKEN = "preview-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NODE_PORT = 8081
HTTPD_PORT = 8080


def site_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in (
            ("server.js", SERVER_JS),
            ("site/index.html", INDEX_HTML),
            ("site/app.js", APP_JS),
            ("site/data.json", '{"ok": true}'),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def guarded(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory, service_env: dict[str, str]
) -> Iterator[ServiceProcess]:
    """A service that requires the API token."""
    folder = tmp_path_factory.mktemp("previews")
    env = {
        **service_env,
        "PARALLAX_INSTANCE": service_env["PARALLAX_INSTANCE"] + "-pv",
        "PARALLAX_STATE_DIR": str(folder / "state"),
        "PARALLAX_API_TOKEN": TOKEN,
    }
    process = ServiceProcess(env, folder / "service.log").start(wait_healthy=False)
    poll(
        lambda: httpx.get(process.url + "/health", headers=AUTH, timeout=5),
        lambda r: r.status_code == 200 and r.json()["runtime"]["synced"],
        timeout_s=60,
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(guarded: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, headers=AUTH, timeout=120) as made:
        yield made


def _spawn(client: httpx.Client, engine: Engine, made: list[str], **fields: Any) -> dict[str, Any]:
    response = client.post("/agents", json=agent_body(**fields))
    assert response.status_code == 201, response.text
    handle: dict[str, Any] = response.json()
    made.append(handle["containerName"])
    return handle


@pytest.fixture(scope="module")
def agents(
    client: httpx.Client, engine: Engine, agent_image: Callable[[str], str]
) -> Iterator[dict[str, dict[str, Any]]]:
    """A busybox agent serving files with httpd, and a Node one running the test app."""
    made: list[str] = []
    web = _spawn(client, engine, made, image=AGENT_IMAGE)
    code, output = engine.exec(
        web["containerName"],
        "sh",
        "-c",
        f"mkdir -p /tmp/www && echo '<h1>from busybox</h1>' > /tmp/www/index.html && "
        f"httpd -p {HTTPD_PORT} -h /tmp/www",
        user="agent",
    )
    assert code == 0, output
    node = _spawn(client, engine, made, image=agent_image("echo"), resources={"memory": "256m"})
    uploaded = client.put(
        f"/agents/{node['id']}/files",
        params={"path": "/workspace"},
        content=site_tar(),
        headers={"content-type": "application/x-tar"},
    )
    assert uploaded.status_code == 200, uploaded.text
    code, output = engine.exec(
        node["containerName"],
        "sh",
        "-c",
        f"nohup node /workspace/server.js /workspace/site {NODE_PORT} >/tmp/app.log 2>&1 &",
        user="agent",
    )
    assert code == 0, output
    for handle, port in ((web, HTTPD_PORT), (node, NODE_PORT)):
        url = f"/agents/{handle['id']}/ports/{port}/"
        poll(functools.partial(client.get, url), lambda r: r.status_code == 200, 30, 0.2)
    yield {"web": web, "node": node}
    for name in made:
        engine.remove_container(name)


def link(client: httpx.Client, agent_id: str, port: int) -> str:
    response = client.post(f"/agents/{agent_id}/previews", json={"port": port})
    assert response.status_code == 200, response.text
    path: str = response.json()["path"]
    return path


def test_busybox_httpd_is_served_through_the_api_and_its_port_shows_in_the_handle(
    client: httpx.Client, guarded: ServiceProcess, agents: dict[str, dict[str, Any]]
) -> None:
    web = agents["web"]["id"]
    page = client.get(f"/agents/{web}/ports/{HTTPD_PORT}/")
    assert page.status_code == 200
    assert page.text == "<h1>from busybox</h1>\n"
    assert page.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    bare = client.get(f"/agents/{web}/ports/{HTTPD_PORT}")
    assert bare.status_code == 308
    assert bare.headers["location"] == f"/agents/{web}/ports/{HTTPD_PORT}/"
    assert client.get(f"/api/agents/{web}/ports/{HTTPD_PORT}/").text == page.text
    assert client.get(f"/agents/{web}").json()["ports"] == [HTTPD_PORT]
    assert httpx.get(f"{guarded.url}/agents/{web}/ports/{HTTPD_PORT}/").status_code == 401


def test_ports_nothing_listens_on_and_unknown_agents_are_refused(
    client: httpx.Client, agents: dict[str, dict[str, Any]]
) -> None:
    web = agents["web"]["id"]
    silent = client.get(f"/agents/{web}/ports/9/")
    assert silent.status_code == 502
    assert silent.json()["code"] == "PREVIEW_UNREACHABLE"
    assert client.get(f"/agents/{web}").json()["ports"] == [HTTPD_PORT]
    assert client.get(f"/agents/{web}/ports/70000/").json()["code"] == "VALIDATION_ERROR"
    assert client.get("/agents/nobody/ports/80/").json()["code"] == "AGENT_NOT_FOUND"
    refused = client.post(f"/agents/{web}/previews", json={"port": 0})
    assert refused.status_code == 422


def test_credentials_are_not_forwarded_and_origin_wide_headers_not_passed_back(
    client: httpx.Client, agents: dict[str, dict[str, Any]]
) -> None:
    node = agents["node"]["id"]
    base = f"/agents/{node}/ports/{NODE_PORT}"
    answer = client.get(f"{base}/headers?q=1", headers={"Cookie": "session=abc", "X-App": "kept"})
    assert answer.status_code == 200
    seen = answer.json()
    assert "authorization" not in seen["headers"] and "cookie" not in seen["headers"]
    assert TOKEN not in answer.text
    assert seen["headers"]["x-app"] == "kept"
    assert seen["headers"]["x-forwarded-prefix"] == base
    assert seen["url"] == "/headers?q=1"
    assert "set-cookie" not in answer.headers and "clear-site-data" not in answer.headers
    moved = client.get(f"{base}/redirect")
    assert moved.status_code == 302
    assert moved.headers["location"] == f"{base}/target?x=1"
    body = os.urandom(5 * 1024 * 1024)
    echoed = client.post(f"{base}/echo", content=body)
    assert echoed.status_code == 200 and echoed.content == body


def test_a_preview_link_opens_its_port_without_the_token_and_nothing_else(
    client: httpx.Client, guarded: ServiceProcess, agents: dict[str, dict[str, Any]]
) -> None:
    web = agents["web"]["id"]
    path = link(client, web, HTTPD_PORT)
    assert path.startswith("/previews/") and path.endswith("/")
    assert TOKEN not in path
    anonymous = httpx.get(guarded.url + path)
    assert anonymous.status_code == 200 and anonymous.text == "<h1>from busybox</h1>\n"
    assert anonymous.headers["access-control-allow-origin"] == "*"
    assert httpx.get(guarded.url + "/api" + path).status_code == 200
    # A sandboxed page's requests carry Origin: null; the link itself is the credential.
    from_page = httpx.get(
        guarded.url + path, headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"}
    )
    assert from_page.status_code == 200
    # The link opens nothing but its port: not the API, not another agent's port.
    assert httpx.get(guarded.url + path.rstrip("/") + "/../../agents").status_code != 200
    ticket = path.split("/")[2]
    payload, signature = ticket.split(".")
    # Its first character: every bit of it is data (the last one's may be padding).
    forged = f"{with_char_changed(payload, 0)}.{signature}"
    refused = httpx.get(f"{guarded.url}/previews/{forged}/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "PREVIEW_TICKET_INVALID"
    rebound = httpx.get(guarded.url + path, headers={"Host": "evil.example"})
    assert rebound.status_code == 403
    assert rebound.json()["code"] == "HOST_NOT_ALLOWED"


def test_a_link_dies_with_its_agent(
    client: httpx.Client, guarded: ServiceProcess, engine: Engine
) -> None:
    made: list[str] = []
    handle = _spawn(client, engine, made, image=AGENT_IMAGE)
    path = link(client, handle["id"], 80)
    assert client.delete(f"/agents/{handle['id']}").status_code == 204
    gone = httpx.get(guarded.url + path)
    assert gone.status_code == 404
    assert gone.json()["code"] == "AGENT_NOT_FOUND"


def test_websocket_echo_through_the_api_and_through_a_link(
    client: httpx.Client, guarded: ServiceProcess, agents: dict[str, dict[str, Any]]
) -> None:
    node = agents["node"]["id"]
    ws_base = guarded.ws_url
    path = link(client, node, NODE_PORT)

    async def echo() -> None:
        async with connect(
            f"{ws_base}/agents/{node}/ports/{NODE_PORT}/socket",
            additional_headers=AUTH,
            subprotocols=["chat"],  # type: ignore[list-item]
            max_size=None,
        ) as ws:
            assert ws.subprotocol == "chat"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            blob = os.urandom(1024 * 1024)
            await ws.send(blob)
            assert await ws.recv() == blob
        async with connect(f"{ws_base}{path}socket") as ws:
            await ws.send("through the link")
            assert await ws.recv() == "through the link"
        async with connect(f"{ws_base}/agents/{node}/ports/{NODE_PORT}/socket") as ws:
            # No token: closed at once by the token check, before any route.
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008
        async with connect(
            f"{ws_base}/agents/{node}/ports/9/socket", additional_headers=AUTH
        ) as ws:
            said = json.loads(await ws.recv())
            assert said["code"] == "PREVIEW_UNREACHABLE"
            await ws.wait_closed()
            assert ws.close_code == 4502

    asyncio.run(echo())


@pytest.mark.skipif(chromium_problem() is not None, reason=str(chromium_problem()))
def test_a_preview_page_in_a_browser_cannot_read_the_token_or_call_the_api(
    client: httpx.Client, guarded: ServiceProcess, agents: dict[str, dict[str, Any]]
) -> None:
    node = agents["node"]["id"]
    path = link(client, node, NODE_PORT)
    with chromium() as browser:
        # The dashboard's tab holds the token, as after a login on /ui.
        browser.get(guarded.url + "/ui/")
        browser.execute_script(f"sessionStorage.setItem('parallax-docker.token', '{TOKEN}')")
        # The same tab then opens the preview (the worst case: sessionStorage is per tab).
        browser.get(guarded.url + path)
        text: str = wait_until(
            browser,
            lambda d: str(d.find_element("id", "out").text).replace("waiting", ""),
            timeout_s=30,
        )
        seen = json.loads(text)
        assert seen["origin"] == "null"
        assert seen["token"] == "blocked" and seen["cookie"] == "blocked"
        for url in ("/agents", "/api/agents", "/health"):
            assert not str(seen[url]).startswith("200"), seen
        assert TOKEN not in text
        # What the app itself needs works: its scripts, its JSON, its WebSocket.
        assert seen["own"] is True
        assert seen["ws"] == "ping from the page"
        # Its Clear-Site-Data never arrived: the dashboard's tab still has its token.
        browser.get(guarded.url + path + "headers")
        browser.get(guarded.url + "/ui/")
        kept = browser.execute_script("return sessionStorage.getItem('parallax-docker.token')")
        assert kept == TOKEN
