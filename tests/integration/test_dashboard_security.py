"""The dashboard's own defences: its headers, and a page of another origin trying to use it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By

from tests.support.browser import chromium, chromium_problem, wait_until
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.integration

PAGES = ("/ui/", "/ui/js/main.js", "/ui/app.css", "/ui/vendor/xterm/xterm.mjs")


@pytest.mark.parametrize("path", PAGES)
def test_every_dashboard_file_carries_the_strict_headers(
    service: ServiceProcess, path: str
) -> None:
    response = httpx.get(service.url + path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cross-origin-resource-policy"] == "same-origin"
    assert "access-control-allow-origin" not in response.headers


def test_the_page_has_no_inline_script_or_style(service: ServiceProcess) -> None:
    html = httpx.get(service.url + "/ui/").text
    assert "<script>" not in html and "<style" not in html and "style=" not in html
    assert '<script type="module" src="js/boot.js"></script>' in html


def test_dashboard_files_are_served_from_the_package_only(service: ServiceProcess) -> None:
    with httpx.Client(base_url=service.url) as client:
        assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
        for path in (
            "/ui/nope.js",
            "/ui/../pyproject.toml",
            "/ui/%2e%2e/config.py",
            "/ui/vendor/SHA256SUMS",
        ):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "NOT_FOUND"
        refused = client.post("/ui/", content=b"x")
        assert refused.status_code == 405
        assert refused.json()["code"] == "METHOD_NOT_ALLOWED"
        # Served under /api too, like every route.
        assert client.get("/api/ui/").status_code == 200


def test_dashboard_files_are_compressed_and_revalidated(service: ServiceProcess) -> None:
    with httpx.Client(base_url=service.url) as client:
        raw = client.get("/ui/vendor/xterm/xterm.mjs", headers={"accept-encoding": "identity"})
        packed = client.get("/ui/vendor/xterm/xterm.mjs", headers={"accept-encoding": "gzip"})
        assert packed.headers["content-encoding"] == "gzip"
        assert int(packed.headers["content-length"]) < len(raw.content) / 2
        assert packed.content == raw.content  # httpx undoes the gzip
        again = client.get(
            "/ui/vendor/xterm/xterm.mjs", headers={"if-none-match": raw.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""
        assert raw.headers["cache-control"] == "no-cache"


def test_the_page_needs_no_token_but_the_api_does(start_service: object) -> None:
    service = start_service({"PARALLAX_API_TOKEN": "tok-dashboard-0123456789"}, wait_healthy=False)  # type: ignore[operator]
    page = httpx.get(service.url + "/ui/")
    assert page.status_code == 200 and "parallax-docker" in page.text
    assert httpx.get(service.url + "/agents").status_code == 401


class _HostilePage(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


HOSTILE_PAGE = """<!doctype html><html><body>
<iframe id="frame" src="{svc}/ui/"></iframe>
<script>
window.results = {{}};
const note = (key) => [() => (results[key] = "loaded"), () => (results[key] = "blocked")];
fetch("{svc}/ui/", {{mode: "cors"}}).then((r) => r.text()).then(...note("fetch"));
const classic = document.createElement("script");
[classic.onload, classic.onerror] = note("script");
classic.src = "{svc}/ui/js/dom.js";
document.body.append(classic);
const module = document.createElement("script");
module.type = "module";
[module.onload, module.onerror] = note("module");
module.src = "{svc}/ui/js/main.js";
document.body.append(module);
const style = document.createElement("link");
style.rel = "stylesheet";
[style.onload, style.onerror] = note("style");
style.href = "{svc}/ui/app.css";
document.head.append(style);
</script></body></html>"""


@pytest.fixture
def hostile_origin(service: ServiceProcess) -> Iterator[str]:
    """Another origin on 127.0.0.1 (a port of its own) serving a page that reaches for /ui."""
    handler = type(
        "Hostile", (_HostilePage,), {"body": HOSTILE_PAGE.format(svc=service.url).encode()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_page_refuses_to_work_for_another_origin(hostile_origin: str) -> None:
    if chromium_problem() is not None:
        pytest.fail(str(chromium_problem()))
    with chromium() as driver:
        driver.get(hostile_origin + "/")
        wait_until(driver, lambda d: len(d.execute_script("return window.results")) == 4, 15)
        results = driver.execute_script("return window.results")
        # Not readable (no CORS), not embeddable as script or style (CORP same-origin).
        assert results == {
            "fetch": "blocked",
            "script": "blocked",
            "module": "blocked",
            "style": "blocked",
        }
        # Not framed: frame-ancestors 'none' leaves the frame with Chromium's error page.
        driver.switch_to.frame(driver.find_element(By.ID, "frame"))
        with pytest.raises(NoSuchElementException):
            driver.find_element(By.ID, "main")
        assert driver.execute_script("return document.documentElement.dataset.rendered") is None
        driver.switch_to.default_content()
