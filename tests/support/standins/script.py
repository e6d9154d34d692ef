"""What each tenant's model calls answer (its script) and what they asked (its record).

A tenant is whatever API key a CLI presents, so tests running at the same time never share a
script. Replies are taken in order by the *main* model calls only (the ones that carry the
CLI's tools or are its conversation); side calls (routing classifiers, titles, quota probes)
get a default answer and leave the script alone. An error reply with ``repeat`` stays at the
head of the queue, so a CLI that retries sees the same error every time until it gives up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

KINDS = ("answer", "shell", "write", "error")
ERRORS = ("429", "500", "garbage", "hang", "drop")
# Bounds: the stand-in runs for a whole test session and must not grow without end.
MAX_RECORDS = 400
MAX_TENANTS = 500
DEFAULT_TENANT = "default"
DEFAULT_TEXT = "ok (the stand-in had nothing scripted for this call)"


@dataclass(frozen=True)
class Reply:
    """One answer of the model: text, a tool call, or an error.

    ``shell`` runs ``command``; ``write`` writes ``content`` to ``path``; each is sent in the
    calling CLI's own tool names (see tools.py), with ``text`` as the words before the call.
    """

    kind: str = "answer"
    text: str = ""
    command: str = ""
    path: str = ""
    content: str = ""
    error: str = ""
    repeat: bool = False
    input_tokens: int = 120
    output_tokens: int = 30
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if self.kind == "error" and self.error not in ERRORS:
            raise ValueError(f"error must be one of {ERRORS}")
        if self.kind == "shell" and not self.command:
            raise ValueError("a shell reply needs a command")
        if self.kind == "write" and not self.path:
            raise ValueError("a write reply needs a path")
        if self.input_tokens < 0 or self.output_tokens < 0 or self.delay_s < 0:
            raise ValueError("token counts and delays cannot be negative")

    @classmethod
    def from_json(cls, data: Any) -> Reply:
        if not isinstance(data, dict):
            raise ValueError("a reply is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown reply fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_tool(self) -> bool:
        return self.kind in ("shell", "write")


DEFAULT_REPLY = Reply(text=DEFAULT_TEXT)


@dataclass
class _Tenant:
    replies: deque[Reply] = field(default_factory=deque)
    records: list[dict[str, Any]] = field(default_factory=list)
    # Set when the tenant is reset: hanging calls give up then.
    released: threading.Event = field(default_factory=threading.Event)
    touched: float = field(default_factory=time.monotonic)


class Book:
    """Every tenant's script and record, shared by the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, _Tenant] = {}
        self._seq = 0

    def _tenant(self, name: str) -> _Tenant:
        tenant = self._tenants.get(name)
        if tenant is None:
            if len(self._tenants) >= MAX_TENANTS:
                oldest = min(self._tenants, key=lambda k: self._tenants[k].touched)
                self._tenants.pop(oldest).released.set()
            tenant = self._tenants[name] = _Tenant()
        tenant.touched = time.monotonic()
        return tenant

    def queue(self, name: str, replies: list[Reply]) -> int:
        """Append ``replies`` to the tenant's script; how many are waiting now."""
        with self._lock:
            tenant = self._tenant(name)
            tenant.replies.extend(replies)
            return len(tenant.replies)

    def take(self, name: str) -> Reply:
        """The reply for the tenant's next main call (the default answer when none is left)."""
        with self._lock:
            tenant = self._tenant(name)
            if not tenant.replies:
                return DEFAULT_REPLY
            reply = tenant.replies[0]
            if not reply.repeat:
                tenant.replies.popleft()
            return reply

    def pending(self, name: str) -> list[Reply]:
        with self._lock:
            return list(self._tenant(name).replies)

    def record(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            tenant = self._tenant(name)
            self._seq += 1
            entry = {"seq": self._seq, "tenant": name, "time": time.time(), **entry}
            tenant.records.append(entry)
            del tenant.records[:-MAX_RECORDS]
            return entry

    def requests(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._tenant(name).records)

    def released(self, name: str) -> threading.Event:
        with self._lock:
            return self._tenant(name).released

    def reset(self, name: str) -> None:
        """Forget the tenant's script and record; calls hanging for it give up."""
        with self._lock:
            tenant = self._tenants.pop(name, None)
        if tenant is not None:
            tenant.released.set()
