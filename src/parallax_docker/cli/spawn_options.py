"""Turning ``spawn``'s command-line options into the API's spawn fields (pure functions).

Secret values (env values and credentials) are read from the options, the caller's environment
or files; no message here ever contains one, only the name it belongs to.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from parallax_docker.errors import ValidationError

NAMED_CREDENTIALS = {
    "anthropicKey": "anthropic_key",
    "openaiKey": "openai_key",
    "googleKey": "google_key",
    "githubToken": "github_token",
}
_MAX_SECRET_FILE = 128 * 1024


def split_pair(value: str, option: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (KEY, VALUE); the value may hold further ``=``."""
    key, sep, rest = value.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValidationError(
            f"{option} expects KEY=VALUE, got an entry without '=' (key {key or '?'!r})",
            resolution=f"For example: {option} NAME=value",
        )
    return key, rest


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    return dict(split_pair(value, "--label") for value in values)


def parse_env(values: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``-e KEY=VALUE``, or ``-e KEY`` to pass the caller's own ``KEY`` (as docker run does)."""
    env = os.environ if environ is None else environ
    result: dict[str, str] = {}
    for value in values:
        if "=" in value:
            key, item = split_pair(value, "--env")
        else:
            key = value.strip()
            if key not in env:
                raise ValidationError(
                    f"--env {key}: no variable {key} in this shell's environment",
                    resolution=f"Export {key}, or give --env {key}=VALUE.",
                )
            item = env[key]
        result[key] = item
    return result


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped, ``export`` and one pair of
    surrounding quotes allowed. A line without ``=`` is an error naming its number."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(
            f"--env-file: cannot read {path} ({exc.strerror or type(exc).__name__})"
        ) from None
    result: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationError(f"--env-file {path}: line {number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[key] = value
    return result


def resolve_secret(
    value: str,
    what: str,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
) -> str:
    """A secret option's value: literal, ``env:VAR``, ``file:PATH`` or ``-`` (standard input)."""
    env = os.environ if environ is None else environ
    if value == "-":
        secret = (stdin or sys.stdin).readline().rstrip("\r\n")
        if not secret:
            raise ValidationError(f"{what}: nothing on standard input")
        return secret
    if value.startswith("env:"):
        name = value[len("env:") :]
        if not name or name not in env:
            raise ValidationError(
                f"{what}: no variable {name or '?'} in this shell's environment",
                resolution=f"Export {name or 'the variable'} first, or give the value another way.",
            )
        return env[name]
    if value.startswith("file:"):
        path = Path(value[len("file:") :])
        try:
            if path.stat().st_size > _MAX_SECRET_FILE:
                raise ValidationError(f"{what}: {path} is too large for a secret")
            return path.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ValidationError(
                f"{what}: cannot read {path} ({exc.strerror or type(exc).__name__})"
            ) from None
    return value


def parse_credentials(
    values: Sequence[str],
    named: Mapping[str, str | None],
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
) -> dict[str, Any] | None:
    """``--credential NAME=VALUE`` (NAME one of the named four, or any variable name for a custom
    credential) plus the named options; values go through ``resolve_secret``."""
    credentials: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for value in values:
        name, raw = split_pair(value, "--credential")
        secret = resolve_secret(raw, f"--credential {name}", environ, stdin)
        if name in NAMED_CREDENTIALS:
            credentials[name] = secret
        else:
            custom[name] = secret
    for name, raw_value in named.items():
        if raw_value is not None:
            credentials[name] = resolve_secret(raw_value, f"--{_dashed(name)}", environ, stdin)
    if custom:
        credentials["custom"] = custom
    return credentials or None


def _dashed(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name)


def spawn_fields(
    *,
    name: str,
    agent_type: str,
    agent_id: str | None = None,
    role: str | None = None,
    reports_to: str | None = None,
    capabilities: Sequence[str] = (),
    workdir: str | None = None,
    env: Mapping[str, str] | None = None,
    credentials: Mapping[str, Any] | None = None,
    memory: str | None = None,
    cpu: str | None = None,
    timeout_s: int | None = None,
    auto_restart: bool = False,
    idle_timeout_s: int | None = None,
    execution_id: str | None = None,
    volumes: Sequence[str] = (),
    network: str | None = None,
    command: str | Sequence[str] | None = None,
    image: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The spawn body in the API's names; unset options are left out."""
    fields: dict[str, Any] = {"name": name, "type": agent_type}
    optional: dict[str, Any] = {
        "id": agent_id,
        "role": role,
        "reportsTo": reports_to,
        "workdir": workdir,
        "idleTimeout": idle_timeout_s,
        "executionId": execution_id,
        "network": network,
        "image": image,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    if capabilities:
        fields["capabilities"] = list(capabilities)
    if env:
        fields["env"] = dict(env)
    if credentials:
        fields["credentials"] = dict(credentials)
    resources = {
        key: value
        for key, value in (("memory", memory), ("cpu", cpu), ("timeout", timeout_s))
        if value is not None
    }
    if resources:
        fields["resources"] = resources
    if auto_restart:
        fields["autoRestart"] = True
    if volumes:
        fields["volumes"] = list(volumes)
    if command is not None and (isinstance(command, str) or len(command) > 0):
        fields["command"] = command if isinstance(command, str) else list(command)
    if labels:
        fields["labels"] = dict(labels)
    return fields
