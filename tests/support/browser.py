"""A real browser for tests: Debian's headless Chromium driven by Selenium (chromium-driver).

``chromium()`` starts one with a fresh profile and the flags that let it run as root in a
container-like machine without reaching anything but what a test serves; ``record_violations``
makes every Content-Security-Policy violation of every page it opens readable from the test.
Nothing here is specific to one feature: security and dashboard tests share it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# How long one script may run in the page (its own timeouts are shorter).
SCRIPT_TIMEOUT_S = 60
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # as root there is no user namespace sandbox to use
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--password-store=basic",
)

# Runs in every page before its own scripts (through DevTools, so the page's CSP does not apply
# to it): keeps the page's CSP violations where a test can read them.
_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push({directive: e.effectiveDirective, blocked: e.blockedURI,
                               sample: e.sample, source: e.sourceFile});
});
"""


def chromium_problem() -> str | None:
    """Why no browser test can run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            return f"{path} is missing: apt-get install {package} (scripts/setup.sh does)"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile, quit (and its profile removed) at the end."""
    problem = chromium_problem()
    if problem is not None:
        raise RuntimeError(problem)
    profile = Path(tempfile.mkdtemp(prefix="parallax-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(SCRIPT_TIMEOUT_S)
    try:
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": _RECORD_VIOLATIONS}
        )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(
    driver: WebDriver,
    condition: Callable[[WebDriver], T],
    timeout_s: float = 10,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy (and return that). On a timeout,
    ``explain`` (read then) says what the page showed instead, for the failure's message."""
    try:
        result: T = WebDriverWait(driver, timeout_s, poll_frequency=0.02).until(condition)
    except TimeoutException as exc:
        if explain is None:
            raise
        raise TimeoutException(f"after {timeout_s} s: {explain()}") from exc
    return result


def violations(driver: WebDriver) -> list[dict[str, Any]]:
    """The Content-Security-Policy violations the current page has seen so far."""
    found = driver.execute_script("return window.__cspViolations || []")
    return list(found)


def console_errors(driver: WebDriver) -> list[str]:
    """Console messages at SEVERE level since the last call (Chromium's browser log)."""
    # get_log is Chromium's own (its driver class, not the base one, declares it).
    entries: list[dict[str, Any]] = cast(Any, driver).get_log("browser")
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]


def run_async(driver: WebDriver, body: str, *args: Any) -> Any:
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
