"""Driving the dashboard (``/ui``) in a real browser: the few steps every browser test repeats.

Elements are found by the ``data-test``/``data-key`` hooks the page sets for this purpose, so
that a change of wording or styling does not break a test.
"""

from __future__ import annotations

from typing import Any

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.support.browser import console_errors, wait_until


class Dashboard:
    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open_fleet(self, timeout_s: float = 15) -> None:
        self.driver.get(self.base_url + "/ui/")
        self.wait_rendered(timeout_s)

    def wait_rendered(self, timeout_s: float = 15) -> None:
        wait_until(
            self.driver,
            lambda d: d.execute_script("return document.documentElement.dataset.rendered"),
            timeout_s,
            explain=self.describe,
        )

    def open_agent(self, agent_id: str) -> None:
        self.driver.get(f"{self.base_url}/ui/#/agents/{agent_id}")
        wait_until(self.driver, lambda d: self.text('[data-test="agent-status"]') not in ("", "…"))

    def find(self, css: str) -> WebElement | None:
        try:
            return self.driver.find_element(By.CSS_SELECTOR, css)
        except NoSuchElementException:
            return None

    def text(self, css: str) -> str:
        try:
            element = self.find(css)
            return element.get_attribute("textContent") or "" if element is not None else ""
        except StaleElementReferenceException:
            return ""

    def row(self, agent_id: str) -> WebElement | None:
        return self.find(f'tr[data-key="agent:{agent_id}"]')

    def row_status(self, agent_id: str) -> str | None:
        row = self.row(agent_id)
        try:
            return row.get_attribute("data-status") if row is not None else None
        except StaleElementReferenceException:
            return None

    def wait_row_status(self, agent_id: str, status: str, timeout_s: float = 10) -> None:
        wait_until(self.driver, lambda _: self.row_status(agent_id) == status, timeout_s)

    def describe(self) -> str:
        """What the page shows, and what its console said, for a wait's failure message."""
        console = console_errors(self.driver)
        return (
            str(
                self.script(
                    """
                const panel = document.querySelector(".logs-panel h2");
                const log = document.querySelector('[data-test="logs"]');
                return JSON.stringify({
                  address: location.hash,
                  connection: document.getElementById("connection")?.textContent,
                  status: document.querySelector('[data-test="agent-status"]')?.textContent,
                  notice: document.querySelector(".notice")?.textContent,
                  logs: panel?.textContent,
                  logLines: log ? log.childElementCount : null,
                  requests: performance.getEntriesByType("resource").slice(-8).map((e) => e.name),
                });
                """
                )
            )
            + f" console: {console[-8:]}"
        )

    def connection(self) -> str:
        return self.text("#connection")

    def script(self, source: str, *args: Any) -> Any:
        return self.driver.execute_script(source, *args)
