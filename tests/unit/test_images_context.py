"""The build context tar sent to the engine."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from parallax_docker.errors import ConfigError
from parallax_docker.images.context import CA_FILE, build_context, find_images_dir


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "entrypoint").mkdir(parents=True)
    (root / "ca").mkdir()
    (root / "Dockerfile.base").write_text("FROM scratch\n")
    script = root / "entrypoint" / "parallax-entrypoint"
    script.write_text("#!/bin/bash\n")
    script.chmod(0o700)
    (root / "ca" / "README.md").write_text("certs go here\n")
    (root / "ca" / "left-behind.pem").write_text("not for this build\n")
    return root


def members(context: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(context))) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_context_holds_the_dockerfiles_and_scripts(images_dir: Path) -> None:
    names = members(build_context(images_dir))
    assert {"Dockerfile.base", "entrypoint/parallax-entrypoint", "ca", "ca/README.md"} <= set(names)


def test_context_modes_and_owners_are_normalised(images_dir: Path) -> None:
    names = members(build_context(images_dir))
    assert names["entrypoint/parallax-entrypoint"].mode == 0o755
    assert names["Dockerfile.base"].mode == 0o644
    assert {(m.uid, m.gid, m.mtime) for m in names.values()} == {(0, 0, 0)}


def test_same_files_give_the_same_context(images_dir: Path) -> None:
    assert build_context(images_dir, b"ca") == build_context(images_dir, b"ca")


def test_certificates_lying_in_the_checkout_are_left_out(images_dir: Path) -> None:
    assert "ca/left-behind.pem" not in members(build_context(images_dir))


def test_the_extra_ca_goes_into_ca(images_dir: Path) -> None:
    context = build_context(images_dir, b"PEM DATA")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(context))) as tar:
        extracted = tar.extractfile(CA_FILE)
        assert extracted is not None
        assert extracted.read() == b"PEM DATA"


def test_find_images_dir_takes_an_explicit_directory(images_dir: Path) -> None:
    assert find_images_dir(images_dir) == images_dir


def test_find_images_dir_finds_this_checkout() -> None:
    assert (find_images_dir() / "Dockerfile.claude").is_file()


def test_find_images_dir_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Dockerfile\.base") as caught:
        find_images_dir(tmp_path)
    assert str(tmp_path) in caught.value.message
    assert "--images-dir" in caught.value.resolution
