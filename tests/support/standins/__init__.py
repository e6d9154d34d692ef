"""Stand-in model services: the providers' wire protocols, scripted per test, stdlib only.

No model provider is reachable from the test machine, so the CLIs are pointed at these instead.
One server (``python3 -m standins``) speaks four protocols on one port:

- Anthropic Messages (``/v1/messages``, streaming and not; ``/v1/messages/count_tokens``) for
  claude;
- the OpenAI Responses API (``/v1/responses``) for codex;
- the Gemini API (``/v1beta/models/{model}:streamGenerateContent?alt=sse``,
  ``:generateContent``, ``:countTokens``) for gemini;
- OpenAI-compatible chat completions (``/v1/chat/completions``) for aider.

Each test scripts its own *tenant*: the API key its agent presents (``x-api-key``,
``Authorization: Bearer``, ``x-goog-api-key`` or ``?key=``). What a tenant's next model call
answers is taken from its queue of replies (an answer; a tool call such as "run this shell
command" or "write this file", expressed in the tool names the CLI offered; or an error:
429, 500, garbage, a hang). Every request is recorded and can be read back. The control API
lives under ``/_standin/`` (see ``server.py``); ``client.py`` is its small test-side client.

Everything here runs inside the stand-in container with nothing but Python's standard library.
"""

from __future__ import annotations

from .script import Book, Reply

__all__ = ["Book", "Reply"]
