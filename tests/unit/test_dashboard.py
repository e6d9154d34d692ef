"""Serving the dashboard's files (api/dashboard.py) and what the package ships (no engine)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from parallax_docker.api.dashboard import CONTENT_SECURITY_POLICY, DashboardMiddleware, load_assets
from parallax_docker.ui import static_root

STATIC = Path(str(static_root()))


async def _inner(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("inner")(scope, receive, send)


def _client(root: Path | None = None) -> httpx.AsyncClient:
    assets = load_assets(root) if root is not None else None
    app = DashboardMiddleware(_inner, assets)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_only_ui_paths_are_answered_the_rest_pass_through() -> None:
    async with _client() as client:
        assert (await client.get("/agents")).text == "inner"
        assert (await client.get("/uix")).text == "inner"
        assert (await client.get("/ui/")).headers["content-type"].startswith("text/html")


def test_only_files_of_known_kinds_are_served(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.css").write_text("y" * 5000)
    (tmp_path / "secret.key").write_text("no")
    (tmp_path / "SHA256SUMS").write_text("no")
    assets = load_assets(tmp_path)
    assert sorted(assets) == ["a.js", "sub/b.css"]
    assert assets["a.js"].gzipped is None  # too small to be worth it
    assert assets["sub/b.css"].gzipped is not None
    assert assets["a.js"].etag == b'"' + hashlib.sha256(b"x").hexdigest()[:32].encode() + b'"'


async def test_head_answers_headers_only_and_errors_are_the_usual_shape() -> None:
    async with _client() as client:
        head = await client.head("/ui/app.css")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0
        missing = await client.get("/ui/missing.js")
        assert missing.status_code == 404
        assert set(missing.json()) == {"error", "code", "resolution"}
        assert missing.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_policy_allows_nothing_inline_and_nothing_foreign() -> None:
    for source in re.findall(r"(\S+)", CONTENT_SECURITY_POLICY):
        assert not source.startswith(("http", "'unsafe", "data:", "blob:", "*")), source


def test_the_pages_and_scripts_hold_no_inline_code_or_html_sinks() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html and "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)
    for script in (STATIC / "js").glob("*.js"):
        text = script.read_text()
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in text, f"{script.name} uses {sink}"
        assert 'setAttribute("style"' not in text and ".style." not in text, script.name


@pytest.mark.parametrize("package", ["xterm", "addon-fit"])
def test_vendored_files_carry_their_licence_and_checksums(package: str) -> None:
    folder = STATIC / "vendor" / package
    assert (
        "MIT License" in (folder / "LICENSE").read_text()
        or "Copyright" in (folder / "LICENSE").read_text()
    )
    sums: dict[str, str] = {}
    for line in (STATIC / "vendor" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    for file in folder.iterdir():
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        assert sums[f"{package}/{file.name}"] == digest, file
