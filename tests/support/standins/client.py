"""The test side of the control API: script one tenant and read back what its CLI sent."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from .script import Reply


class ControlError(RuntimeError):
    pass


class Tenant:
    """One test's slice of a stand-in server, named by the API key its agent presents."""

    def __init__(self, base_url: str, key: str | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key or f"sk-standin-{secrets.token_hex(8)}"
        self.timeout_s = timeout_s

    def _call(self, method: str, suffix: str, payload: Any = None) -> Any:
        url = f"{self.base_url}/_standin/tenants/{quote(self.key, safe='')}{suffix}"
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ControlError(f"{method} {suffix}: {exc.code} {exc.read()[:500]!r}") from exc

    def queue(self, *replies: Reply | dict[str, Any]) -> int:
        """Append replies (``Reply`` or its JSON) to the script; how many are waiting."""
        items = [r.to_json() if isinstance(r, Reply) else r for r in replies]
        return int(self._call("POST", "/replies", {"replies": items})["queued"])

    def answer(self, text: str, **fields: Any) -> int:
        return self.queue(Reply(text=text, **fields))

    def shell(self, command: str, then: str, **fields: Any) -> int:
        """A shell tool call, then ``then`` as the answer once its result comes back."""
        return self.queue(Reply(kind="shell", command=command, **fields), Reply(text=then))

    def write(self, path: str, content: str, then: str | None, **fields: Any) -> int:
        """A file write, then (unless None: aider writes from its answer) an answer."""
        first = Reply(kind="write", path=path, content=content, **fields)
        return self.queue(first) if then is None else self.queue(first, Reply(text=then))

    def fail(self, error: str, repeat: bool = True) -> int:
        """Every main call fails with ``error`` (429, 500, garbage, hang, drop) until reset."""
        return self.queue(Reply(kind="error", error=error, repeat=repeat))

    def pending(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/replies")["replies"])

    def requests(self, main_only: bool = False) -> list[dict[str, Any]]:
        found = list(self._call("GET", "/requests")["requests"])
        return [r for r in found if r["main"]] if main_only else found

    def reset(self) -> None:
        self._call("DELETE", "")


def health(base_url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/_standin/health", timeout=timeout_s):
            return True
    except (OSError, urllib.error.URLError):
        return False
