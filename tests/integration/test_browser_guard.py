"""A hostile web page in a real browser cannot drive the service; an allowed one can.

Headless Chromium (tests/support/browser.py) loads a page from another origin, a second port
of 127.0.0.1 that the test serves, as any site the user visits could be. From there it tries
what a cross-site attacker can: ``fetch`` with a JSON body (preflighted), with no content type
and with ``text/plain`` (simple requests, sent without asking), ``no-cors``, form posts (one
shaped as JSON), a restart and a delete of a live agent, and WebSockets to ``/ws``,
``/ws/events`` and the live agent's terminal. Nothing is created or changed on the engine and no
WebSocket frame arrives. With the page's origin in PARALLAX_ALLOWED_ORIGINS the same calls work.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.integration.conftest import agent_body, session_objects
from tests.integration.test_prometheus import scrape, total
from tests.support.browser import chromium, run_async
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "browser-must-never-see-this-4242"
PAGE = b"<!doctype html><title>some site</title><iframe name=sink></iframe>"

# Helpers defined in the page by every script below.
PRELUDE = """
const out = {};
const attempt = async (name, f) => {
  try { out[name] = await f(); } catch (e) { out[name] = 'error: ' + e; }
};
const socket = (url, send) => new Promise(resolve => {
  const r = {opened: false, frames: [], code: null, reason: null};
  let s;
  try { s = new WebSocket(url); } catch (e) { r.error = String(e); resolve(r); return; }
  s.onopen = () => { r.opened = true; if (send) s.send(send); };
  s.onmessage = async e => r.frames.push(typeof e.data === 'string' ? e.data : await e.data.text());
  s.onclose = e => { r.code = e.code; r.reason = e.reason; resolve(r); };
  setTimeout(() => { try { s.close(); } catch (_) {} resolve(r); }, 6000);
});
const formPost = (action, fields, enctype) => new Promise(resolve => {
  const form = document.createElement('form');
  form.method = 'POST'; form.action = action; form.target = 'sink';
  if (enctype) form.enctype = enctype;
  for (const [k, v] of Object.entries(fields)) {
    const input = document.createElement('input');
    input.name = k; input.value = v; form.appendChild(input);
  }
  document.body.appendChild(form);
  const frame = document.querySelector('iframe');
  frame.onload = () => resolve('submitted');
  setTimeout(() => resolve('submitted (no load event)'), 5000);
  form.submit();
});
"""

ATTACK = (
    PRELUDE
    + """
const [base, agentId, body] = arguments;
const ws = base.replace('http://', 'ws://');
await attempt('fetch json', () => fetch(base + '/agents', {method: 'POST',
  headers: {'Content-Type': 'application/json'}, body}).then(r => r.status));
await attempt('fetch no content type', () => fetch(base + '/agents',
  {method: 'POST', body}).then(r => r.status));
await attempt('fetch text/plain', () => fetch(base + '/agents', {method: 'POST',
  headers: {'Content-Type': 'text/plain'}, body}).then(r => r.status));
await attempt('fetch no-cors', () => fetch(base + '/api/agents',
  {method: 'POST', mode: 'no-cors', body}).then(r => r.type));
await attempt('restart no-cors', () => fetch(base + '/agents/' + agentId + '/restart',
  {method: 'POST', mode: 'no-cors'}).then(r => r.type));
await attempt('delete', () => fetch(base + '/agents/' + agentId,
  {method: 'DELETE'}).then(r => r.status));
await attempt('read list', () => fetch(base + '/agents').then(r => r.status));
const json = JSON.parse(body);
const head = JSON.stringify(json).slice(0, -1) + ', "x": "';
await attempt('form as json', () => formPost(base + '/agents', {[head]: '"}'}, 'text/plain'));
await attempt('form urlencoded', () => formPost(base + '/agents', {name: 'x', type: 'custom'}));
await attempt('form restart', () => formPost(base + '/agents/' + agentId + '/restart', {}));
out['ws'] = await socket(ws + '/ws');
out['ws events'] = await socket(ws + '/ws/events?history=20&agentId=' + agentId);
out['terminal'] = await socket(ws + '/ws/agents/' + agentId + '/terminal',
  'cat /run/parallax/env; env\\r');
return out;
"""
)

FRIENDLY = (
    PRELUDE
    + """
const [base, agentId, body] = arguments;
const ws = base.replace('http://', 'ws://');
await attempt('create', async () => {
  const r = await fetch(base + '/agents', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body});
  return {status: r.status, body: await r.json()};
});
await attempt('list', async () => (await fetch(base + '/agents')).status);
if (out['create'].body && out['create'].body.id) {
  await attempt('delete', async () => (await fetch(base + '/agents/' + out['create'].body.id,
    {method: 'DELETE'})).status);
}
out['ws events'] = await socket(ws + '/ws/events?history=5&agentId=' + agentId);
out['terminal'] = await socket(ws + '/ws/agents/' + agentId + '/terminal',
  'echo from-$((40+2))-browser\\r');
return out;
"""
)


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_origin() -> Iterator[str]:
    """A site on another port of 127.0.0.1: another origin than the service's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _live_agent(proc: ServiceProcess) -> dict[str, Any]:
    body = agent_body(env={"PARALLAX_TEST_SECRET": SECRET})
    response = httpx.post(proc.url + "/agents", json=body, timeout=120)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


def _started_at(engine: Engine, agent: dict[str, Any]) -> str:
    return str(engine.inspect(agent["containerName"])["State"]["StartedAt"])  # type: ignore[index]


def test_a_page_of_another_origin_can_neither_change_nor_read_anything(
    service: ServiceProcess, api: httpx.Client, engine: Engine, page_origin: str
) -> None:
    agent = _live_agent(service)
    try:
        started = _started_at(engine, agent)
        before = session_objects(engine)
        refused_before = total(scrape(api), "parallax_errors_total", code="ORIGIN_NOT_ALLOWED")
        with chromium() as browser:
            browser.get(page_origin + "/")
            out = run_async(browser, ATTACK, service.url, agent["id"], json.dumps(agent_body()))
        report = json.dumps(out, indent=1)
        # Nothing was made, and the agent was neither restarted nor removed.
        assert session_objects(engine) == before, report
        assert _started_at(engine, agent) == started, report
        assert api.get(f"/agents/{agent['id']}").status_code == 200
        # The page learnt nothing: every readable answer failed the browser's CORS check.
        for name in ("fetch json", "fetch no content type", "fetch text/plain", "delete"):
            assert str(out[name]).startswith("error: TypeError"), report
        # No WebSocket frame arrived; each was closed for its origin.
        for name in ("ws", "ws events", "terminal"):
            assert out[name]["frames"] == [], report
            assert (out[name]["code"], out[name]["reason"]) == (1008, "ORIGIN_NOT_ALLOWED"), report
        assert SECRET not in report
        # The service saw the attempts and refused them (sent without asking: every simple
        # request, the forms, the no-cors calls and the preflights).
        refused = total(scrape(api), "parallax_errors_total", code="ORIGIN_NOT_ALLOWED")
        assert refused - refused_before >= 10, report
    finally:
        engine.remove_container(agent["containerName"])


def test_a_page_of_an_allowed_origin_works(
    start_service: Callable[..., ServiceProcess], engine: Engine, page_origin: str
) -> None:
    proc = start_service({"PARALLAX_ALLOWED_ORIGINS": page_origin})
    agent = _live_agent(proc)
    try:
        with chromium() as browser:
            browser.get(page_origin + "/")
            out = run_async(browser, FRIENDLY, proc.url, agent["id"], json.dumps(agent_body()))
        report = json.dumps(out, indent=1)
        assert out["create"]["status"] == 201, report
        assert out["create"]["body"]["status"] == "ready", report
        assert (out["list"], out["delete"]) == (200, 204), report
        assert out["ws events"]["opened"] and out["ws events"]["frames"], report
        assert any("from-42-browser" in frame for frame in out["terminal"]["frames"]), report
    finally:
        engine.remove_container(agent["containerName"])
