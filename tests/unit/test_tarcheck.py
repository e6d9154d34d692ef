"""The streaming tar check: what passes unchanged, what is refused, and when."""

from __future__ import annotations

import io
import tarfile

import pytest

from parallax_docker.errors import BadArchiveError
from parallax_docker.runtime.tarcheck import TarCheck


def archive(*members: tuple[str, bytes, str], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            info.linkname = data.decode()
            tar.addfile(info)
    return buffer.getvalue()


def run(data: bytes, chunk: int) -> bytes:
    check = TarCheck()
    out = b"".join(check.feed(data[i : i + chunk]) for i in range(0, len(data), chunk))
    check.finish()
    return out


LONG = "a/" * 80 + "long-name.txt"


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 1 << 20])
def test_a_good_archive_passes_byte_for_byte_in_any_chunking(fmt: int, chunk: int) -> None:
    name = LONG if fmt != tarfile.USTAR_FORMAT else "x/long-name.txt"
    data = archive(
        ("dir", b"", "dir"),
        ("dir/file", b"x" * 1000, "file"),
        (name, b"long", "file"),
        ("dir/link", b"file", "symlink"),
        ("dir/sub/up", b"../file", "symlink"),
        ("hard", b"dir/file", "hardlink"),
        ("./dotted", b"", "file"),
        fmt=fmt,
    )
    assert run(data, chunk) == data


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (("../x", b"1", "file"), "climbs"),
        (("a/../../x", b"1", "file"), "climbs"),
        (("/etc/x", b"1", "file"), "absolute"),
        (("l", b"/etc", "symlink"), "absolute path"),
        (("a/l", b"../..", "symlink"), "out of the archive"),
        (("a/b/l", b"../../../etc", "symlink"), "out of the archive"),
        (("h", b"../x", "hardlink"), "climbs"),
        (("c", b"", "chr"), "device"),
        (("f", b"", "fifo"), "FIFO"),
        (("../" + LONG, b"1", "file"), "climbs"),
    ],
)
def test_a_bad_member_is_refused_before_its_header_passes(
    member: tuple[str, bytes, str], why: str
) -> None:
    good = archive(("ok", b"fine", "file"))
    data = archive(("ok", b"fine", "file"), member, ("after", b"x", "file"))
    check = TarCheck()
    passed = b""
    with pytest.raises(BadArchiveError, match=why):
        for i in range(0, len(data), 100):
            passed += check.feed(data[i : i + 100])
    # Only the good member's header and data (and perhaps a long name's blocks) got out.
    assert passed.startswith(good[:1024])
    assert len(passed) < len(data) - 1024


def test_pax_path_is_the_name_checked() -> None:
    data = archive(("../" + "p" * 120, b"x", "file"), fmt=tarfile.PAX_FORMAT)
    with pytest.raises(BadArchiveError, match="climbs"):
        run(data, 512)


def test_an_archive_cut_inside_a_member_is_refused_at_the_end() -> None:
    data = archive(("big", b"z" * 5000, "file"))
    check = TarCheck()
    check.feed(data[:2000])
    with pytest.raises(BadArchiveError, match="ends inside 'big'"):
        check.finish()


def test_garbage_and_nothing_are_not_archives() -> None:
    with pytest.raises(BadArchiveError, match="not a tar archive"):
        run(b"hello world " * 100, 512)
    with pytest.raises(BadArchiveError, match="empty"):
        run(b"", 512)


def test_missing_end_blocks_are_accepted_as_tar_does() -> None:
    data = archive(("a", b"1", "file"))
    assert run(data[:1024], 100) == data[:1024]
