"""Preview links: what a ticket opens, and when it stops opening it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from parallax_docker.errors import AgentNotFoundError, PreviewTicketError, ValidationError
from tests.support.tamper import with_char_changed
from tests.unit.harness import harness, request


def ticket_of(path: str) -> str:
    assert path.startswith("/previews/") and path.endswith("/")
    return path.split("/")[2]


async def test_a_ticket_opens_its_agents_port_until_it_expires(tmp_path: Path) -> None:
    async with harness(tmp_path, PARALLAX_PREVIEW_TTL_S="600") as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        previews = h.runtime.previews
        link = previews.issue("a1", 8080, now=1000.0)
        assert link.expires_at == 1600
        ticket = ticket_of(link.path)
        assert previews.verify(ticket, now=1599.0) == ("a1", 8080)
        with pytest.raises(PreviewTicketError):
            previews.verify(ticket, now=1601.0)


async def test_a_tampered_or_foreign_ticket_is_refused(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        ticket = ticket_of(h.runtime.previews.issue("a1", 8080).path)
        payload, signature = ticket.split(".")
        # Its first character changed: every bit of it counts (the last one's may be padding).
        forged = with_char_changed(signature, 0)
        for bad in (
            f"{payload}x.{signature}",
            f"{payload}.{forged}",
            payload,
            "",
            "not base64!.@@",
        ):
            with pytest.raises(PreviewTicketError):
                h.runtime.previews.verify(bad)
        # Another service process (another key) does not honour it.
        async with harness(tmp_path / "other") as other:
            await other.runtime.spawner.spawn(request(id="a1"))
            with pytest.raises(PreviewTicketError):
                other.runtime.previews.verify(ticket)


async def test_a_ticket_dies_with_the_container_it_was_made_for(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        ticket = ticket_of(h.runtime.previews.issue("a1", 3000).path)
        await h.runtime.operations.stop("a1")
        with pytest.raises(AgentNotFoundError):
            h.runtime.previews.verify(ticket)
        # A new agent under the same id is another container: the old link opens nothing.
        await h.runtime.spawner.spawn(request(id="a1"))
        with pytest.raises(AgentNotFoundError):
            h.runtime.previews.verify(ticket)
        assert h.runtime.previews.verify(
            ticket_of(h.runtime.previews.issue("a1", 3000).path), now=time.time()
        ) == ("a1", 3000)


async def test_ports_are_numbers_and_opened_ones_show_in_the_handle(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.runtime.spawner.spawn(request(id="a1"))
        for port in (0, 65536):
            with pytest.raises(ValidationError):
                h.runtime.previews.issue("a1", port)
        h.runtime.previews.opened("a1", 8080)
        h.runtime.previews.opened("a1", 3000)
        h.runtime.previews.opened("a1", 8080)
        assert h.runtime.registry.get("a1").handle().ports == [3000, 8080]
        assert b'"ports":[3000,8080]' in h.runtime.registry.get("a1").handle_json()
