"""A zip archive read in parts: its central directory entry by entry, and one member from its local header.

Written here because ``zipfile`` reads the whole central directory into memory when it opens an archive
(about half a kilobyte per member: a million-member archive is half a gigabyte before the first member),
and can only read members through a ``ZipFile``. Planning a big zip needs the directory read as a stream,
resumable at any entry, and each shard needs its own members by byte range. The format is APPNOTE.TXT's
(PKWARE): the end-of-central-directory record, its zip64 form, the central directory's file headers with
their zip64 extra field, and local file headers; members stored, deflated, bzip2- or LZMA-compressed.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_EOCD_SIZE = 22
_MAX_COMMENT = 65535
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
METHODS = {STORED: "stored", DEFLATED: "deflate", BZIP2: "bzip2", LZMA: "lzma"}

ReadRange = Callable[[int, int], bytes]
"""Reads ``length`` bytes of the archive from byte ``start``."""


class ZipFormatError(ValueError):
    """The archive's directory is not a readable zip directory."""


@dataclass(frozen=True)
class Directory:
    """Where the central directory lies, and how many entries it holds."""

    offset: int
    size: int
    entries: int


@dataclass(frozen=True)
class Entry:
    """One central-directory file header: enough to read the member by range later."""

    name: str
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    external_attr: int
    is_dir: bool

    def as_row(self) -> list[int]:
        """What a shard keeps to read the member: [header offset, compressed size, method, crc, size, flags]."""
        return [self.header_offset, self.compressed_size, self.method, self.crc, self.size, self.flags]


def locate_directory(read: ReadRange, archive_size: int) -> Directory:
    """Find the central directory from the end of the archive (its last 64 KiB and a bit)."""
    tail_start = max(0, archive_size - _EOCD_SIZE - _MAX_COMMENT)
    tail = read(tail_start, archive_size - tail_start)
    at = tail.rfind(_EOCD)
    while at >= 0 and at + _EOCD_SIZE > len(tail):
        at = tail.rfind(_EOCD, 0, at)
    if at < 0:
        raise ZipFormatError("no end-of-central-directory record (not a zip archive, or truncated)")
    (_, disk, _, _, entries, size, offset, _) = struct.unpack("<4s4H2LH", tail[at : at + _EOCD_SIZE])
    if disk != 0:
        raise ZipFormatError("multi-disk (split) zip archives are not supported")
    locator_at = at - 20
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == _ZIP64_LOCATOR:
        (_, _, record_offset, _) = struct.unpack("<4sLQL", tail[locator_at : locator_at + 20])
        record = read(record_offset, 56)
        if record[:4] != _ZIP64_EOCD:
            raise ZipFormatError("zip64 end-of-central-directory record not where its locator says")
        (_, _, _, _, _, _, _, entries, size, offset) = struct.unpack("<4sQ2H2L4Q", record)
    if offset + size > archive_size:
        raise ZipFormatError("the central directory lies past the end of the archive (truncated?)")
    return Directory(offset, size, entries)


def iter_entries(stream: IO[bytes], count: int) -> Iterator[tuple[Entry, int]]:
    """Up to ``count`` central-directory entries from a stream placed at one, each with its byte length
    (so a reader can resume at the next one)."""
    for _ in range(count):
        fixed = _read_exactly(stream, 46)
        if fixed[:4] != _CENTRAL:
            raise ZipFormatError("bad central directory entry signature")
        fields = struct.unpack("<4s4B4HL2L5HLL", fixed)
        flags, method = fields[5], fields[6]
        crc, compressed, size = fields[9], fields[10], fields[11]
        name_len, extra_len, comment_len = fields[12], fields[13], fields[14]
        external, offset = fields[17], fields[18]
        raw_name = _read_exactly(stream, name_len)
        extra = _read_exactly(stream, extra_len)
        _read_exactly(stream, comment_len)
        size, compressed, offset = _zip64_values(extra, size, compressed, offset)
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        entry = Entry(name, flags, method, crc, compressed, size, offset, external, name.endswith("/"))
        yield entry, 46 + name_len + extra_len + comment_len


def _zip64_values(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """Replace the 32-bit fields that say 0xFFFFFFFF with the zip64 extra field's 64-bit values (in the
    order the format lists them, only those that overflowed)."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack("<2H", extra[at : at + 4])
        if tag == 0x0001:
            values = list(struct.unpack(f"<{length // 8}Q", extra[at + 4 : at + 4 + length - length % 8]))
            fields = [size, compressed, offset]
            for place, current in enumerate(fields):
                if current == 0xFFFFFFFF and values:
                    fields[place] = int(values.pop(0))
            return fields[0], fields[1], fields[2]
        at += 4 + length
    return size, compressed, offset


def read_member(stream: IO[bytes], row: list[int], max_bytes: int) -> bytes:
    """The member whose local header starts where ``stream`` stands, checked against its directory row
    (``Entry.as_row``): decompressed, size-limited and CRC-checked. Raises ValueError saying why not."""
    _offset, compressed, method, crc, size, flags = row
    if flags & 0x1:
        raise ValueError("encrypted zip member")
    if size > max_bytes:
        raise ValueError(f"member is {size} bytes, over the limit of {max_bytes}")
    header = _read_exactly(stream, 30)
    if header[:4] != _LOCAL:
        raise ValueError("corrupt zip member: bad local header signature")
    name_len, extra_len = struct.unpack("<2H", header[26:30])
    _read_exactly(stream, name_len + extra_len)
    packed = _read_exactly(stream, compressed)
    data = _decompress(packed, method, max_bytes)
    if len(data) > max_bytes:
        raise ValueError(f"member inflates past the limit of {max_bytes} bytes")
    if len(data) != size or zlib.crc32(data) != crc:
        raise ValueError("corrupt zip member: its size or CRC does not match the directory")
    return data


def _decompress(packed: bytes, method: int, max_bytes: int) -> bytes:
    try:
        if method == STORED:
            return packed
        if method == DEFLATED:
            inflater = zlib.decompressobj(-15)
            return inflater.decompress(packed, max_bytes + 1)
        if method == BZIP2:
            return bz2.BZ2Decompressor().decompress(packed, max_bytes + 1)
        if method == LZMA:
            # zipfile's own reader of the zip form of LZMA (a version and properties header, then raw LZMA1).
            return bytes(zipfile.LZMADecompressor().decompress(packed))  # type: ignore[attr-defined]
    except (zlib.error, OSError, EOFError, lzma.LZMAError, struct.error) as exc:
        raise ValueError(f"corrupt zip member: {exc}") from exc
    raise ValueError(f"zip compression method {method} is not supported (stored, deflate, bzip2, lzma are)")


def _read_exactly(stream: IO[bytes], count: int) -> bytes:
    data = stream.read(count) if count else b""
    while len(data) < count:
        more = stream.read(count - len(data))
        if not more:
            raise ZipFormatError("archive ends inside a record (truncated)")
        data += more
    return data
