"""Shared test configuration: integration tests are marked by their folder, and grouped for
pytest-xdist (scripts/test.sh runs the suite in two worker processes with ``--dist loadgroup``).

Each integration test file is one group, so its module fixtures (a service, a private engine, a
browser) are made once, on one worker; the swarm's files are one group, so one cluster serves
them all. Every worker is its own session: its own labels, networks, services and clean-up
(tests/integration/conftest.py).
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if "/integration/" not in path:
            continue
        item.add_marker(pytest.mark.integration)
        group = "swarm" if "/integration/swarm/" in path else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))
