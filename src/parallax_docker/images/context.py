"""The build context sent to the engine: the images/ directory plus the extra CA, as a tar.gz.

Entries are normalised (owner root, fixed mtime, 0755 or 0644) so that the same files always
give the same context and the engine's layer cache is hit on a rebuild from another checkout.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from parallax_docker.errors import ConfigError

CA_DIR = "ca"
CA_FILE = f"{CA_DIR}/extra-ca.pem"
_CA_SUFFIXES = (".crt", ".pem")
_SKIP_NAMES = frozenset({"__pycache__", ".git"})


def find_images_dir(explicit: Path | None = None, *, cwd: Path | None = None) -> Path:
    """The directory holding Dockerfile.base and friends.

    An explicit path wins; otherwise the checkout this package runs from (src layout), then
    ``./images``.
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    else:
        candidates.append(Path(__file__).resolve().parents[3] / "images")
        candidates.append((cwd or Path.cwd()) / "images")
    for candidate in candidates:
        if (candidate / "Dockerfile.base").is_file():
            return candidate
    raise ConfigError(
        "cannot find the images directory (Dockerfile.base) at "
        + ", ".join(str(c) for c in candidates),
        resolution="Run from a parallax-docker checkout or pass --images-dir PATH.",
    )


def build_context(images_dir: Path, extra_ca: bytes | None = None) -> bytes:
    """A gzipped tar of ``images_dir`` with ``extra_ca`` (if any) as ca/extra-ca.pem.

    Certificates lying in the checkout's ca/ are left out: the CA a build uses is only ever
    the one the builder was told about.
    """
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add_dir(tar, CA_DIR)
        for path in sorted(images_dir.rglob("*")):
            relative = path.relative_to(images_dir)
            if _SKIP_NAMES.intersection(relative.parts) or path.is_symlink():
                continue
            name = relative.as_posix()
            if name == CA_DIR:
                continue
            if relative.parts[0] == CA_DIR and path.suffix in _CA_SUFFIXES:
                continue
            if path.is_dir():
                _add_dir(tar, name)
            elif path.is_file():
                executable = path.stat().st_mode & 0o111 != 0
                _add_file(tar, name, path.read_bytes(), 0o755 if executable else 0o644)
        if extra_ca is not None:
            _add_file(tar, CA_FILE, extra_ca, 0o644)
    return buffer.getvalue()


def _normalised(info: tarfile.TarInfo, mode: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = mode
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    tar.addfile(_normalised(info, 0o755))


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(_normalised(info, mode), io.BytesIO(data))
