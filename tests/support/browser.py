"""A real headless Chromium for tests, driven by Selenium (Debian's ``chromium`` and
``chromium-driver``, installed by scripts/setup.sh; nothing is downloaded).

    with chromium() as browser:
        browser.get("http://127.0.0.1:8000/page.html")
        result = run_async(browser, "return await fetch(arguments[0]).then(r => r.status)", url)

Each browser gets a fresh profile in its own temporary folder, removed afterwards. It runs as
root (hence ``--no-sandbox``) and talks to nothing but the addresses the test opens: background
networking, updates, sync and QUIC are off.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
# How long one script may run in the page (its own timeouts are shorter).
SCRIPT_TIMEOUT_S = 60


def browser_missing() -> str | None:
    """Why no browser can be started here (None: one can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is missing: run scripts/setup.sh (Debian chromium, chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: pip install -e '.[dev]'"
    return None


@contextmanager
def chromium(extra_flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile; quit and cleaned up on exit."""
    missing = browser_missing()
    if missing is not None:
        pytest.fail(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="parallax-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", *extra_flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(SCRIPT_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def run_async(driver: Any, body: str, *args: Any) -> Any:
    """Run ``body`` (an async function body: ``await`` allowed, ``return`` its result) in the
    page and return what it returns; an exception in the page comes back as ``{"error": ...}``.
    """
    script = (
        "const done = arguments[arguments.length - 1];"
        "const args = Array.from(arguments).slice(0, -1);"
        f"(async (...arguments) => {{ {body} }})(...args)"
        ".then(done, e => done({error: String(e)}));"
    )
    return driver.execute_async_script(script, *args)
