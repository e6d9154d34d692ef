"""Following threads as the Parallax control plane does (``thread_event`` frames on ``/ws``),
and the small images the thread tests need, built locally from ``parallax/agent-echo``.

- ``slow_echo_image``: the echo agent whose health check passes only ~10 s after it starts, so
  a spawn can be shown to answer while the agent is far from ready.
- ``fake_claude_image``: the echo image with a ``claude`` command that speaks Claude Code's
  stream-json (a tool call, a refused permission, a result with usage); its answer repeats the
  message and the arguments it was given, so a test sees the approval flags reach the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.support.images import DOCKER
from tests.support.polling import poll

SLOW_READY_S = 10

_SLOW_DOCKERFILE = f"""\
FROM {{base}}
LABEL parallax.test={{definition}}
HEALTHCHECK --interval=1s --timeout=3s --start-period=120s --retries=3 \\
    CMD test -f /tmp/slow-ready && /usr/local/bin/parallax-healthcheck
CMD ["/bin/sh", "-c", \
    "sleep {SLOW_READY_S}; touch /tmp/slow-ready; exec /usr/local/bin/parallax-idle"]
"""

# Claude Code's stream-json, as the driver reads it: init, a tool call, the result.
_FAKE_CLAUDE = r"""#!/usr/bin/env node
const args = process.argv.slice(2);
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");
  const session = "fake-session-1";
  say({ type: "system", subtype: "init", session_id: session });
  say({ type: "assistant", session_id: session, message: { content: [
    { type: "tool_use", id: "t1", name: "Bash", input: { command: "ls /workspace" } } ] } });
  say({ type: "result", subtype: "success", is_error: false, session_id: session,
    result: input + "\nARGS: " + args.join(" ") + "\nCONFIDENCE: 0.9",
    usage: { input_tokens: 11, output_tokens: 7 },
    permission_denials: [ { tool_name: "Write", tool_use_id: "t2",
      tool_input: { file_path: "/workspace/x" } } ] });
});
"""

_FAKE_CLAUDE_DOCKERFILE = """\
FROM {base}
LABEL parallax.test={definition}
USER root
RUN printf '%s' '{script}' | base64 -d > /usr/local/bin/claude && chmod 755 /usr/local/bin/claude
USER 1000:1000
"""


def _build(dockerfile: str, name: str, base: str) -> str:
    definition = hashlib.sha256((dockerfile + base).encode()).hexdigest()[:12]
    ref = f"parallax-test/{name}:{definition}"
    found = subprocess.run(
        [DOCKER, "image", "inspect", "--format", '{{index .Config.Labels "parallax.test"}}', ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0 and found.stdout.strip() == definition:
        return ref
    text = dockerfile.format(base=base, definition=definition)
    subprocess.run(
        [DOCKER, "build", "-q", "-t", ref, "-"],
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=600,
    )
    return ref


def slow_echo_image(echo: str) -> str:
    return _build(_SLOW_DOCKERFILE, "slow-echo", echo)


def fake_claude_image(echo: str) -> str:
    import base64

    script = base64.b64encode(_FAKE_CLAUDE.encode()).decode()
    return _build(_FAKE_CLAUDE_DOCKERFILE.replace("{script}", script), "fake-claude", echo)


class ThreadFeed:
    """A plain ``/ws`` client, as the control plane's RuntimeClient: every frame, kept."""

    def __init__(self, url: str) -> None:
        self.frames: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            connect(url.replace("http://", "ws://") + "/api/ws")
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for text in self._ws:
                with self._lock:
                    self.frames.append(json.loads(text))
        except Exception as exc:  # the socket closed (the test ended or the service stopped)
            self.error = exc

    def close(self) -> None:
        self._stack.close()
        self._reader.join(5)

    def __enter__(self) -> ThreadFeed:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def events(self, thread_id: str) -> list[dict[str, Any]]:
        """The thread's events (``data.event``) in the order they came, each with its thread."""
        with self._lock:
            frames = list(self.frames)
        return [
            {**frame["data"]["event"], "thread": frame["data"]["thread"], "frame": frame}
            for frame in frames
            if frame.get("event") == "thread_event"
            and frame["data"]["event"]["threadId"] == thread_id
        ]

    def types(self, thread_id: str) -> list[str]:
        return [event["type"] for event in self.events(thread_id)]

    def wait_for(
        self,
        thread_id: str,
        check: Callable[[list[str]], bool],
        timeout_s: float = 60,
    ) -> list[dict[str, Any]]:
        try:
            poll(lambda: self.types(thread_id), check, timeout_s)
        except AssertionError as exc:
            with self._lock:
                seen = [frame.get("event") for frame in self.frames]
            raise AssertionError(
                f"{exc}; frames seen on /ws: {seen[-40:]}; reader: {self.error!r}"
            ) from None
        return self.events(thread_id)

    def first(self, thread_id: str, kind: str, after: int = 0) -> dict[str, Any]:
        """The first ``kind`` event after the ``after``-th event of the thread."""
        for event in self.events(thread_id)[after:]:
            if event["type"] == kind:
                return event
        raise AssertionError(f"no {kind} for {thread_id}: {self.types(thread_id)}")


def since(start: float) -> float:
    return time.monotonic() - start
