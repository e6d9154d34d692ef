"""The meter's counts on disk, so that a restart of the service neither forgets what agents
spent nor hands a spent budget back.

One JSON file (0600, in the gateway's 0700 state folder), rewritten whole and atomically at
most once a second when something was counted, and at stop. A crash of the service loses at
most the last second's counts; a file that cannot be read is set aside, not trusted, and the
counts start from zero with a warning.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from parallax_docker.runtime.gateway.meter import Meter, Tally
from parallax_docker.runtime.private_files import write_private

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
_SCOPES = ("agents", "executions", "threads")


class Ledger:
    def __init__(self, path: Path, meter: Meter) -> None:
        self._path = path
        self._meter = meter
        self._written = meter.changes

    def load(self) -> None:
        try:
            data = json.loads(self._path.read_text())
            loaded = {
                scope: {name: Tally.restore(t) for name, t in dict(data.get(scope, {})).items()}
                for scope in _SCOPES
            }
            refusals = {str(k): int(v) for k, v in dict(data.get("refusals", {})).items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError):
            aside = self._path.with_suffix(".unreadable")
            self._path.replace(aside)
            log.warning(
                "model usage counts could not be read; set aside", extra={"path": str(aside)}
            )
            return
        for scope, tallies in loaded.items():
            getattr(self._meter, scope).update(tallies)
        self._meter.refusals.update(refusals)
        self._written = self._meter.changes

    def flush(self) -> None:
        """Write the counts when they changed since the last write."""
        changes = self._meter.changes
        if changes == self._written:
            return
        data = {
            scope: {name: t.dump() for name, t in getattr(self._meter, scope).items()}
            for scope in _SCOPES
        }
        data["refusals"] = dict(self._meter.refusals)
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self._path, json.dumps(data, separators=(",", ":")).encode())
        self._written = changes

    async def step(self) -> float:
        self.flush()
        return FLUSH_INTERVAL_S
