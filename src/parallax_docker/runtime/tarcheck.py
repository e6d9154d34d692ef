"""A tar stream checked as it passes, before a member's header reaches the agent (pure).

Uploaded archives are unpacked by tar inside the agent. Every member must stay inside the
folder it is unpacked in: a relative name without ``..``; a symbolic link whose target is
relative and does not climb out of the archive; a hard link to another member; no devices or
FIFOs, no member types tar would treat specially (sparse files, volume labels). GNU long names
and pax headers (``path``, ``linkpath``, ``size``) are read, since they change what the next
member is. A bad member raises BadArchiveError before its header is passed on; the upload is
staged (runtime/files.py), so what came before it is dropped too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from parallax_docker.errors import BadArchiveError

BLOCK = 512
# GNU long names and pax headers larger than this are not something tar needs.
META_MAX = 1024 * 1024
_REGULAR = (b"0", b"\0", b"7")
_META = (b"L", b"K", b"x", b"g")


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:
        # GNU base-256 for sizes of 8 GiB and more.
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise BadArchiveError("the upload is not a tar archive (a bad number field)") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    """A pax header's records: ``<length> <key>=<value>\\n``."""
    found: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise BadArchiveError("the archive has a malformed pax header") from None
        if length <= 0:
            break
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        found[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return found


def _parts(name: str) -> list[str]:
    return [part for part in name.split("/") if part not in ("", ".")]


def check_name(name: str) -> list[str]:
    """The name's parts; BadArchiveError when it is absolute or climbs."""
    if name.startswith("/"):
        raise BadArchiveError(f"the archive member {name[:200]!r} has an absolute name")
    parts = _parts(name)
    if ".." in parts:
        raise BadArchiveError(f"the archive member {name[:200]!r} climbs with '..'")
    return parts


def check_link_target(member: list[str], target: str) -> None:
    """A symbolic link's target, followed from the member's folder, stays in the archive."""
    if target.startswith("/"):
        raise BadArchiveError(f"the link {'/'.join(member)[:200]!r} points to an absolute path")
    depth = len(member) - 1
    for part in _parts(target):
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise BadArchiveError(f"the link {'/'.join(member)[:200]!r} points out of the archive")


class TarCheck:
    """Feed the stream in; ``feed`` returns what may be passed on so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        # Bytes of member data (and padding) still to pass before the next header.
        self._skip = 0
        self._meta: bytearray | None = None
        self._meta_type = b""
        self._meta_left = 0
        self._long_name: str | None = None
        self._long_link: str | None = None
        self._pax: dict[str, str] = {}
        self._zero_blocks = 0
        self._ended = False
        self._members = 0
        self._current = ""

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        view = memoryview(chunk)
        while view:
            if self._ended:
                out += view
                break
            if self._skip:
                taken = view[: self._skip]
                if self._meta is not None and self._meta_left:
                    part = bytes(taken[: self._meta_left])
                    self._meta += part
                    self._meta_left -= len(part)
                    if len(self._meta) > META_MAX:
                        raise BadArchiveError("the archive has an oversized long name or header")
                out += taken
                self._skip -= len(taken)
                view = view[len(taken) :]
                if not self._skip and self._meta is not None:
                    self._end_meta()
                continue
            need = BLOCK - len(self._buffer)
            self._buffer += view[:need]
            view = view[need:]
            if len(self._buffer) == BLOCK:
                self._header(bytes(self._buffer))
                out += self._buffer
                self._buffer.clear()
        return bytes(out)

    def finish(self) -> None:
        """The stream ended: it must not stop inside a member (the end blocks may be missing,
        as GNU tar allows)."""
        if self._ended:
            return
        pending = self._meta is not None or self._long_name or self._long_link or self._pax
        if self._buffer or self._skip or pending:
            raise BadArchiveError(f"the archive ends inside {self._current[:200]!r}")
        if not self._members and not self._zero_blocks:
            raise BadArchiveError("the upload is not a tar archive (it is empty)")

    def _header(self, block: bytes) -> None:
        if not any(block):
            self._zero_blocks += 1
            self._ended = self._zero_blocks >= 2
            return
        self._zero_blocks = 0
        stored = _octal(block[148:156])
        if stored != sum(block[:148]) + 8 * 32 + sum(block[156:]):
            raise BadArchiveError("the upload is not a tar archive (a header's checksum is wrong)")
        kind = block[156:157]
        size = int(self._pax.get("size", "")) if self._pax.get("size", "").isdigit() else None
        size = _octal(block[124:136]) if size is None or kind in _META else size
        self._skip = -(-size // BLOCK) * BLOCK
        if kind in _META:
            self._meta = bytearray()
            self._meta_type = kind
            self._meta_left = size
            if not self._skip:
                self._end_meta()
            return
        name = self._long_name or self._pax.get("path") or self._ustar_name(block)
        link = self._long_link or self._pax.get("linkpath") or _text(block[157:257])
        self._long_name = self._long_link = None
        self._pax = {}
        self._current = name
        self._members += 1
        parts = check_name(name)
        if kind in _REGULAR or kind == b"5":
            return
        if kind == b"2":
            check_link_target(parts, link)
            self._skip = 0
            return
        if kind == b"1":
            check_name(link)
            self._skip = 0
            return
        if kind in (b"3", b"4", b"6"):
            raise BadArchiveError(f"the archive member {name[:200]!r} is a device or FIFO")
        raise BadArchiveError(f"the archive member {name[:200]!r} has an unsupported type")

    @staticmethod
    def _ustar_name(block: bytes) -> str:
        name = _text(block[0:100])
        if block[257:262] == b"ustar":
            prefix = _text(block[345:500])
            if prefix:
                return f"{prefix}/{name}"
        return name

    def _end_meta(self) -> None:
        data = bytes(self._meta or b"")
        self._meta = None
        if self._meta_type == b"L":
            self._long_name = _text(data)
        elif self._meta_type == b"K":
            self._long_link = _text(data)
        elif self._meta_type == b"x":
            self._pax = _pax(data)
        elif {"path", "linkpath"} & set(_pax(data)):
            # A global header's records apply to every member after it: no names there.
            raise BadArchiveError("the archive names members in a global pax header")


async def checked(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    check = TarCheck()
    async for chunk in chunks:
        out = check.feed(chunk)
        if out:
            yield out
    check.finish()
