"""Parsing and validation of the values a spawn request carries (pure functions, no I/O).

Memory takes Docker units (b, k, m, g in any case, binary as Docker reads them: 512M is 512 MiB;
decimals allowed) and Kubernetes binary units (Ki, Mi, Gi); CPU takes cores as a number or
string, or millicores ("500m").
Everything that does not parse raises ValidationError: nothing is ever read as "unlimited".
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from parallax_docker.errors import LimitAboveHostError, ValidationError

# Docker refuses containers below 6 MiB of memory (runc's minimum).
MIN_MEMORY_BYTES = 6 * 1024 * 1024
# NanoCpus below a hundredth of a core are rounded to nothing by the CFS quota.
MIN_NANO_CPUS = 10_000_000
NANO = 1_000_000_000

_MEMORY_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_DOCKER_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
}
_K8S_BINARY = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}

_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# Docker's own container-name rule; ids and names become parts of container names and aliases.
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")


def _shown(value: object) -> str:
    """A value as it may appear in an error: quoted and short (bodies can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 42 else text[:40] + "…"


def parse_memory(value: str | int) -> int:
    """Return bytes for a memory quantity such as "512m", "1.5g", "256Mi" or 1048576."""
    if isinstance(value, bool):
        raise ValidationError("memory must be a size such as '512m' or '1Gi', not a boolean")
    if isinstance(value, int):
        amount, unit = Decimal(value), ""
    else:
        match = _MEMORY_RE.match(str(value))
        if not match:
            raise ValidationError(
                f"memory {_shown(value)} is not a size; use Docker units (512m, 1.5g) or "
                "Kubernetes units (256Mi, 1Gi)"
            )
        try:
            amount = Decimal(match.group(1))
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            raise ValidationError(f"memory {_shown(value)} is not a number") from None
        unit = match.group(2)
    if unit in _K8S_BINARY:
        factor = _K8S_BINARY[unit]
    elif unit.lower() in _DOCKER_UNITS:
        factor = _DOCKER_UNITS[unit.lower()]
    else:
        raise ValidationError(f"memory {_shown(value)} has an unknown unit {unit[:16]!r}")
    try:
        size = int(amount * factor)
    except ArithmeticError:
        raise ValidationError(f"memory {str(value)[:40]!r} is too large") from None
    if size < MIN_MEMORY_BYTES:
        raise ValidationError(
            f"memory {_shown(value)} is below Docker's minimum of 6m",
            resolution="Ask for at least 6m of memory; 512m suits most agents.",
        )
    return size


def parse_cpu(value: str | float | int) -> int:
    """Return NanoCpus for a CPU quantity: 0.5, 1.0, 2, "0.5" or "500m"."""
    if isinstance(value, bool):
        raise ValidationError("cpu must be a number of cores such as 0.5, not a boolean")
    text = str(value).strip()
    try:
        cores = Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)
    except ArithmeticError:  # InvalidOperation, and Overflow for huge exponents
        raise ValidationError(
            f"cpu {_shown(value)} is not a number of cores; use 0.5, 1.0, 2 or '500m'"
        ) from None
    if not cores.is_finite() or (isinstance(value, float) and not math.isfinite(value)):
        raise ValidationError(f"cpu {_shown(value)} is not a finite number")
    try:
        nano = int(cores * NANO)
    except ArithmeticError:
        raise ValidationError(f"cpu {str(value)[:40]!r} is too large") from None
    if nano < MIN_NANO_CPUS:
        raise ValidationError(
            f"cpu {_shown(value)} is below the minimum of 0.01 cores",
            resolution="Ask for at least 0.01 cores; 0.5 suits most agents.",
        )
    return nano


def check_within_host(memory_bytes: int, nano_cpus: int, host_memory: int, host_cpus: int) -> None:
    """Refuse limits the host cannot give: Docker would accept them and enforce nothing."""
    if host_memory and memory_bytes > host_memory:
        raise LimitAboveHostError(
            f"memory limit {format_bytes(memory_bytes)} exceeds the host's "
            f"{format_bytes(host_memory)}",
            resolution="Ask for less memory than the host has.",
        )
    if host_cpus and nano_cpus > host_cpus * NANO:
        raise LimitAboveHostError(
            f"cpu limit {nano_cpus / NANO:g} exceeds the host's {host_cpus} cores",
            resolution=f"Ask for at most {host_cpus} cores.",
        )


def format_bytes(size: int) -> str:
    for unit, factor in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if size >= factor and size % (factor // 1024 or 1) == 0:
            return f"{size / factor:g}{unit}"
    return f"{size}b"


def human_bytes(value: int | float) -> str:
    """A size for people: ``1.9 GiB``, ``512.0 MiB``, ``12 B``."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop returns


def validate_env_key(key: str) -> None:
    if not _ENV_KEY_RE.match(key) or len(key) > 255:
        raise ValidationError(
            f"env key {key[:64]!r} is not a valid variable name",
            resolution="Env keys are letters, digits and underscores, not starting with a digit.",
        )


def validate_name(kind: str, value: str, max_length: int = 63) -> None:
    """Ids and names follow Docker's name rule, short enough to be a DNS label."""
    if not value or len(value) > max_length or not NAME_RE.match(value):
        raise ValidationError(
            f"{kind} {value[:80]!r} is not valid: use up to {max_length} letters, digits, "
            "'_', '.' or '-', starting with a letter or digit"
        )


@dataclass(frozen=True)
class VolumeRequest:
    """A parsed ``volumes`` entry; nothing about the host is checked here."""

    source: str
    target: str
    read_only: bool
    is_bind: bool


_NAMED_VOLUME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


def parse_volume(entry: str) -> VolumeRequest:
    """Parse "/host:/container[:ro|rw]" or "name:/container[:ro|rw]"."""
    if not isinstance(entry, str) or not entry:
        raise ValidationError("a volume entry must be a non-empty string")
    if any(unicodedata.category(char) == "Cc" for char in entry):
        raise ValidationError("a volume entry cannot contain control characters")
    parts = entry.split(":")
    if len(parts) not in (2, 3):
        raise ValidationError(
            f"volume {entry!r} must look like '/host/path:/container/path[:ro|rw]' or "
            "'volume-name:/container/path[:ro|rw]'"
        )
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ValidationError(
            f"volume {entry!r}: mode {mode!r} is not allowed; use 'ro' or 'rw' only"
        )
    if not target.startswith("/"):
        raise ValidationError(f"volume {entry!r}: the container path must be absolute")
    if source.startswith("/"):
        is_bind = True
    elif _NAMED_VOLUME_RE.match(source):
        is_bind = False
    else:
        raise ValidationError(
            f"volume {entry!r}: the source must be an absolute host path or a volume name "
            "(relative paths are refused)"
        )
    return VolumeRequest(source=source, target=target, read_only=mode == "ro", is_bind=is_bind)
