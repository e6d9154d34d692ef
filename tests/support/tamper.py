"""Forge a credential by changing one character of it, for tests that it is refused.

The character is always really changed: a fixed replacement ("…[:-1] + '0'") equals the
original whenever the original already ends in it, and a test of "forged is refused" then
fails at random (once in sixteen for a hex MAC). '0' and '1' belong to both the hex and the
base64url alphabets, so the forgery is still well formed and reaches the signature check.
"""

from __future__ import annotations


def with_char_changed(text: str, index: int) -> str:
    """``text`` with the character at ``index`` (negative counts from the end) replaced."""
    position = index % len(text)
    replacement = "1" if text[position] == "0" else "0"
    return text[:position] + replacement + text[position + 1 :]
