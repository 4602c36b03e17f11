"""A tar archive read from any member boundary on: each member with where its bytes lie and where the
next member starts, so planning can stop after any member and go on later from there, and a shard can
read its members back by byte range from an uncompressed archive without a copy.

Headers are read by ``tar_headers`` where they are plain (nearly every member of nearly every archive),
by ``tarfile`` from the first one that is not.

Compressed tars cannot be entered in the middle: ``decompressed`` re-reads them from the start and skips
the uncompressed bytes already planned (decompressing is several times faster than planning).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, cast

from worker.inputs.archive import skippable, tar_member_name, tar_refusal
from worker.inputs.tar_headers import BLOCK, Blocks, data_blocks, parse

COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz"}


@dataclass
class TarEntry:
    """One member: its name, why it cannot be an item (or None), its bytes' place in the uncompressed
    archive, and where the next member's header starts."""

    name: str
    error: str | None
    data_offset: int
    size: int
    next_offset: int
    read: Callable[[], bytes]
    """The member's bytes; only valid until the next entry is taken."""


def compression(head: bytes) -> str | None:
    """The compression of an archive from its first bytes (None: plain)."""
    return next((name for magic, name in COMPRESSED_MAGIC.items() if head.startswith(magic)), None)


def decompressed(raw: IO[bytes], method: str, skip: int) -> IO[bytes]:
    """The uncompressed stream of a compressed archive, ``skip`` bytes into it."""
    opener = {"gzip": gzip.GzipFile, "bzip2": bz2.BZ2File, "xz": lzma.LZMAFile}[method]
    stream = cast(IO[bytes], opener(fileobj=raw) if method == "gzip" else opener(raw))
    left = skip
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise ValueError(f"the archive ends {left} bytes before where planning stopped (it changed?)")
        left -= len(chunk)
    return stream


def iter_tar(stream: IO[bytes], base: int, archive_name: str, *, max_bytes: int) -> Iterator[TarEntry]:
    """The members of an uncompressed tar stream that starts at a member boundary, ``base`` bytes into
    the archive (offsets are absolute). A truncated or corrupt tail ends the archive as one failed entry.

    Plain headers are read here (``tar_headers``: several times faster than ``tarfile``, and nothing kept
    per member); from the first header they do not cover on, ``tarfile`` reads the rest."""
    blocks = Blocks(stream)
    count = 0
    try:
        while True:
            header = blocks.read(BLOCK)
            if not header.strip(b"\0"):
                return  # the end-of-archive blocks (whole or cut), or no more blocks at all
            info = parse(header)
            if info is None:
                start = base + blocks.position - len(header)
                rest = cast(IO[bytes], blocks.rest(header))  # read() is all tarfile's stream mode calls
                yield from _with_tarfile(rest, base, start, archive_name, max_bytes, count)
                return
            data_offset = blocks.position
            padded = data_blocks(info)
            if info.isdir() or skippable(info.name):
                if not blocks.skip(padded):
                    raise tarfile.ReadError("unexpected end of data")
                continue
            count += 1
            taken = [0]  # bytes of the member's data its reader took

            def read(size: int = info.size, taken: list[int] = taken) -> bytes:
                data = blocks.read(size - taken[0])
                taken[0] += len(data)
                if taken[0] < size:
                    raise tarfile.ReadError("unexpected end of data")
                return data

            next_offset = base + data_offset + padded
            yield TarEntry(
                tar_member_name(info), tar_refusal(info, max_bytes), base + data_offset, info.size, next_offset, read
            )
            if not blocks.skip(padded - taken[0]):
                raise tarfile.ReadError("unexpected end of data")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        yield _broken(archive_name, base, count, exc)


def _with_tarfile(
    stream: IO[bytes], base: int, start: int, archive_name: str, max_bytes: int, count: int
) -> Iterator[TarEntry]:
    """The members from ``start`` on, read by ``tarfile`` (``base``: where the caller's stream began, for
    the error's name; ``count``: members it already gave)."""
    try:
        archive = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - closed by the with below
    except tarfile.ReadError as exc:
        if "empty file" in str(exc):
            return  # at the very end: nothing left to read
        if start == base:
            raise ValueError(f"{archive_name}: not a readable tar archive at byte {base} ({exc})") from exc
        yield _broken(archive_name, base, count, exc)  # a corrupt or cut header after good members
        return
    try:
        with archive:
            for info in archive:
                if info.isdir() or skippable(info.name):
                    continue
                count += 1
                error = tar_refusal(info, max_bytes)
                member = info  # bound for the reader below

                def read(member: tarfile.TarInfo = member) -> bytes:
                    handle = archive.extractfile(member)
                    return handle.read() if handle else b""

                yield TarEntry(
                    tar_member_name(info), error, start + info.offset_data, info.size, start + archive.offset, read
                )
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        yield _broken(archive_name, base, count, exc)


def _broken(archive_name: str, base: int, count: int, exc: BaseException) -> TarEntry:
    return TarEntry(
        f"{archive_name}#after-byte-{base}-{count}-members",
        f"archive truncated or corrupt after {count} members from byte {base}: {exc}",
        0,
        0,
        -1,
        lambda: b"",
    )
