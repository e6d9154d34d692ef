"""What a thread's input means here: a message for a turn, an interrupt, or a refusal.

A thread's turns are headless (one CLI run per message), so there is no screen to type into.
Terminal input is mapped onto what it would do in an interactive session, or refused:

- ``message``: a new turn (queued behind the running one).
- ``raw`` Ctrl-C (``\\u0003``) or Escape (``\\u001b``), ``keys`` ``C-c``/``ctrl+c``/``Escape``:
  interrupt the running turn.
- ``raw`` text ending the line (``"fix it\\r"``): the line is a message, as typed and entered.
- Anything else (``keys: ["ENTER"]``, ``"y"``, arrows): nothing is asking, so nothing can
  answer; refused with INPUT_UNSUPPORTED rather than dropped.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from parallax_docker.errors import InputUnsupportedError, ValidationError
from parallax_docker.thread_models import ThreadInputRequest

INTERRUPT_CHARS = frozenset("\x03\x1b")
INTERRUPT_KEYS = frozenset(
    {"c-c", "ctrl-c", "ctrl+c", "control-c", "^c", "ctrl_c", "escape", "esc"}
)


@dataclass(frozen=True)
class InputPlan:
    interrupt: bool
    message: str | None


def plan_input(request: ThreadInputRequest) -> InputPlan:
    interrupt = False
    typed: str | None = None
    if request.raw:
        if set(request.raw.strip()) <= INTERRUPT_CHARS and request.raw.strip():
            interrupt = True
        else:
            typed = _typed_line(request.raw)
    if request.keys:
        unknown = [key for key in request.keys if key.strip().lower() not in INTERRUPT_KEYS]
        if unknown:
            raise InputUnsupportedError(
                f"keys {[key[:20] for key in unknown[:5]]} have no effect on a thread: its turns "
                "are headless and nothing is waiting for a key"
            )
        interrupt = True
    message = request.message or None
    if typed is not None and message is not None:
        raise ValidationError("send either message or raw text, not both")
    message = message if message is not None else typed
    if not interrupt and message is None:
        raise ValidationError("message, raw or keys is required")
    return InputPlan(interrupt=interrupt, message=message)


def _typed_line(raw: str) -> str:
    """Raw text typed and entered: the line without its end; refused if it holds keys."""
    line = raw.rstrip("\r\n")
    controls = [char for char in line if unicodedata.category(char) == "Cc" and char != "\t"]
    if controls or not line.strip() or line == raw:
        raise InputUnsupportedError(
            "raw input is mapped only when it is Ctrl-C, Escape, or a line of text ended with "
            "Enter ('\\r'); anything else has nothing to answer in a headless turn"
        )
    return line
