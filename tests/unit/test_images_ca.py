"""Choosing the extra CA for a build."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallax_docker.errors import ValidationError
from parallax_docker.images.ca import choose_ca

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def host_bundle(tmp_path: Path) -> Path:
    path = tmp_path / "host.crt"
    path.write_bytes(PEM + PEM)
    return path


def test_default_takes_the_host_bundle_when_it_exists(host_bundle: Path) -> None:
    choice = choose_ca(None, None, host_bundle=host_bundle)
    assert choice.source == "host"
    assert choice.data == PEM + PEM
    assert "2 certificates" in choice.describe()


def test_default_is_no_ca_without_a_host_bundle(tmp_path: Path) -> None:
    choice = choose_ca(None, None, host_bundle=tmp_path / "absent.crt")
    assert choice.source == "none"
    assert choice.data is None


def test_a_given_file_replaces_the_default_host_bundle(tmp_path: Path, host_bundle: Path) -> None:
    mine = tmp_path / "proxy.pem"
    mine.write_bytes(PEM.rstrip(b"\n"))
    choice = choose_ca(mine, None, host_bundle=host_bundle)
    assert choice.source == "file"
    assert choice.data == PEM


def test_file_and_host_ca_together_are_both_used(tmp_path: Path, host_bundle: Path) -> None:
    mine = tmp_path / "proxy.pem"
    mine.write_bytes(PEM)
    choice = choose_ca(mine, True, host_bundle=host_bundle)
    assert choice.source == "file+host"
    assert choice.data == PEM * 3


def test_no_host_ca_turns_the_default_off(host_bundle: Path) -> None:
    assert choose_ca(None, False, host_bundle=host_bundle).source == "none"


def test_asking_for_a_missing_host_bundle_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="--host-ca"):
        choose_ca(None, True, host_bundle=tmp_path / "absent.crt")


def test_a_file_without_a_pem_certificate_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ValidationError, match="no PEM certificate"):
        choose_ca(key, None, host_bundle=tmp_path / "absent.crt")
