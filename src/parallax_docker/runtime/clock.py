"""Engine timestamps (RFC 3339 with nanoseconds) as Unix seconds, and Unix seconds as ISO 8601."""

from __future__ import annotations

import functools
from datetime import UTC, datetime


# The janitor reads each agent's timestamps on every pass; they change only with its state.
@functools.lru_cache(maxsize=4096)
def parse_engine_time(value: str | None) -> float | None:
    """Unix seconds for an engine timestamp; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    offset = "+00:00"
    if text.endswith("Z"):
        text = text[:-1]
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        text, offset = text[:-6], text[-6:]
    main, _, fraction = text.partition(".")
    # Python reads up to microseconds; the engine writes nanoseconds.
    digits = "".join(ch for ch in fraction if ch.isdigit())[:6]
    try:
        parsed = datetime.fromisoformat(f"{main}{'.' + digits if digits else ''}{offset}")
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso_time(timestamp: float) -> str:
    """Unix seconds as ISO 8601 in UTC, to the millisecond (``2026-01-01T00:00:00.000Z``)."""
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
