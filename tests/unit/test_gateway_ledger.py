"""The meter's counts outlive the service: written when they change, read back at start, and a
file that cannot be read is set aside rather than trusted."""

from __future__ import annotations

import json
from pathlib import Path

from parallax_docker.runtime.gateway.ledger import Ledger
from parallax_docker.runtime.gateway.meter import Caller, Meter, price_table
from parallax_docker.runtime.gateway.usage import Usage


def test_counts_written_are_the_counts_read_back(tmp_path: Path) -> None:
    path = tmp_path / "gateway" / "counts.json"
    meter = Meter(price_table(None))
    ledger = Ledger(path, meter)
    meter.record(Caller("a1", "ex1", "th1"), "anthropic", Usage(1000, 20, "claude-sonnet-4-5"))
    meter.record(Caller("a1", "ex1", "th1"), "openai", Usage(5, 1, "gpt-5"))
    meter.refused("budget", Caller("a1", "ex1"))
    ledger.flush()
    assert path.stat().st_mode & 0o777 == 0o600

    again = Meter(price_table(None))
    Ledger(path, again).load()
    for scope in ("agents", "executions", "threads"):
        assert getattr(again, scope) == getattr(meter, scope)
    assert again.of_agent("a1").tokens == 1026 and again.of_agent("a1").refused == 1
    assert set(again.of_execution("ex1").by_provider) == {"anthropic", "openai"}
    assert again.of_agent("a1").cost_usd == meter.of_agent("a1").cost_usd > 0
    assert again.refusals == {"budget": 1}


def test_nothing_is_written_until_something_changes(tmp_path: Path) -> None:
    path = tmp_path / "counts.json"
    meter = Meter(price_table(None))
    ledger = Ledger(path, meter)
    ledger.flush()
    assert not path.exists()
    meter.record(Caller("a1"), "anthropic", Usage(1, 1, "m"))
    ledger.flush()
    written = path.read_text()
    path.write_text("{}")  # were it written again, this would go
    ledger.flush()
    assert path.read_text() == "{}"
    meter.forget("a1")
    ledger.flush()
    assert json.loads(path.read_text())["agents"] == {} and written != "{}"


def test_an_unreadable_file_is_set_aside_and_counting_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "counts.json"
    path.write_text('{"agents": {"a1": {"requests": "many"')
    meter = Meter(price_table(None))
    Ledger(path, meter).load()
    assert meter.agents == {} and not path.exists()
    assert (tmp_path / "counts.unreadable").exists()
