"""Which extra CA certificates a build gets: a file, the host's bundle, both, or none.

TLS-intercepting proxies re-sign registry traffic with their own CA; npm, pip and curl inside
the build must trust it. The default takes the host's bundle when there is one: it already
trusts whatever proxy the host goes through, and the Dockerfiles keep it out of the final image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from parallax_docker.errors import ValidationError

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"
_MAX_BYTES = 8 * 1024 * 1024

CaSource = Literal["file", "host", "file+host", "none"]


@dataclass(frozen=True)
class CaChoice:
    source: CaSource
    data: bytes | None = None
    paths: tuple[Path, ...] = ()

    def describe(self) -> str:
        if self.data is None:
            return "no extra CA"
        count = self.data.count(_PEM_MARKER)
        where = ", ".join(str(p) for p in self.paths)
        return f"extra CA from {where} ({count} certificate{'s' if count != 1 else ''})"


def choose_ca(
    ca_cert: Path | None,
    host_ca: bool | None,
    *,
    host_bundle: Path = HOST_CA_BUNDLE,
) -> CaChoice:
    """Decide the extra CA.

    ``host_ca``: True takes the host bundle, False never does, None (the default) takes it when
    it exists and no ``ca_cert`` was given.
    """
    parts: list[tuple[Path, bytes]] = []
    if ca_cert is not None:
        parts.append((ca_cert, _read_pem(ca_cert, "--ca-cert")))
    take_host = host_ca if host_ca is not None else (ca_cert is None and host_bundle.is_file())
    if take_host:
        parts.append((host_bundle, _read_pem(host_bundle, "--host-ca")))
    if not parts:
        return CaChoice("none")
    source: CaSource
    if ca_cert is not None and take_host:
        source = "file+host"
    else:
        source = "file" if ca_cert is not None else "host"
    data = b"".join(blob if blob.endswith(b"\n") else blob + b"\n" for _, blob in parts)
    return CaChoice(source, data, tuple(path for path, _ in parts))


def _read_pem(path: Path, option: str) -> bytes:
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise ValidationError(f"{option}: {path} is larger than a CA bundle can be")
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(
            f"{option}: cannot read {path} ({exc.strerror or exc.__class__.__name__})",
            resolution="Give the path of a PEM file with the CA certificate(s).",
        ) from None
    if _PEM_MARKER not in data:
        raise ValidationError(
            f"{option}: {path} holds no PEM certificate",
            resolution="Give a PEM file (-----BEGIN CERTIFICATE-----), not DER or a key.",
        )
    return data
