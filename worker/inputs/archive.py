"""Streaming archive readers: tar (plain or compressed) read in one pass, zip through a spooled file.

Members are yielded one at a time, so an archive larger than RAM is fine. Every unsafe or unreadable
member becomes a ``Member`` with an ``error``: path traversal, absolute paths, links, device files,
members over the byte limit, encrypted or corrupt zip members, and a truncated archive.
"""

from __future__ import annotations

import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

SKIPPED_NAMES = frozenset({".DS_Store", "Thumbs.db"})


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes | None = None
    error: str | None = None


def unsafe_reason(name: str) -> str | None:
    """Why a member name must not be used as a path, or None if it is safe."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in archive"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "path traversal ('..') in archive member name"
    return None


def normal_name(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/")).lstrip("./") or name


def tar_refusal(info: tarfile.TarInfo, max_bytes: int) -> str | None:
    """Why a tar member cannot become an item (an unsafe name, a link, a special file, too big), or None."""
    reason = unsafe_reason(info.name)
    if reason:
        return reason
    if info.issym() or info.islnk():
        return f"link member (to {info.linkname!r}) refused"
    if not info.isreg():
        return "not a regular file (device, fifo or special member)"
    if info.size > max_bytes:
        return f"member is {info.size} bytes, over the limit of {max_bytes}"
    return None


def tar_member_name(info: tarfile.TarInfo) -> str:
    """The name an item gets: normalised, except an unsafe name, kept as it is so the error shows it."""
    return info.name if unsafe_reason(info.name) else normal_name(info.name)


def skippable(name: str) -> bool:
    """Folder noise that is never an item (macOS resource forks, Finder and Explorer files)."""
    base = posixpath.basename(name.rstrip("/"))
    return base in SKIPPED_NAMES or name.startswith("__MACOSX/") or base.startswith("._")


def detect_format(head: bytes, name: str) -> str:
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ"):
        return "tar"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    lowered = name.lower()
    if lowered.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    if lowered.endswith(".zip"):
        return "zip"
    return "unknown"


def iter_members(stream: IO[bytes], name: str, *, max_bytes: int) -> Iterator[Member]:
    """Yield the members of an archive given as a readable stream."""
    head = cast(IO[bytes], _Peek(stream))
    kind = detect_format(cast(_Peek, head).peek(512), name)
    if kind == "zip":
        yield from _iter_zip(head, max_bytes=max_bytes)
    elif kind == "tar":
        yield from _iter_tar(head, name, max_bytes=max_bytes)
    else:
        raise ValueError(f"{name}: not a tar, tar.gz or zip archive")


def _iter_tar(stream: IO[bytes], name: str, *, max_bytes: int) -> Iterator[Member]:
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for info in archive:
                member_name = info.name
                if info.isdir() or skippable(member_name):
                    continue
                count += 1
                reason = tar_refusal(info, max_bytes)
                if reason:
                    yield Member(tar_member_name(info), error=reason)
                else:
                    handle = archive.extractfile(info)
                    data = handle.read() if handle else b""
                    yield Member(normal_name(member_name), data=data)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if count == 0:
            raise ValueError(f"{name}: not a readable tar archive ({exc})") from exc
        yield Member(
            f"{name}#after-{count}-members", error=f"archive truncated or corrupt after {count} members: {exc}"
        )


def _iter_zip(stream: IO[bytes], *, max_bytes: int) -> Iterator[Member]:
    # zip keeps its directory at the end: spool to disk (bounded memory), then read members.
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
        try:
            archive = zipfile.ZipFile(spool)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"not a readable zip archive ({exc})") from exc
        with archive:
            for info in archive.infolist():
                if info.is_dir() or skippable(info.filename):
                    continue
                reason = unsafe_reason(info.filename)
                mode = info.external_attr >> 16
                if reason:
                    yield Member(info.filename, error=reason)
                elif stat.S_ISLNK(mode):
                    yield Member(info.filename, error="link member refused")
                elif info.flag_bits & 0x1:
                    yield Member(normal_name(info.filename), error="encrypted zip member")
                elif info.file_size > max_bytes:
                    yield Member(
                        normal_name(info.filename),
                        error=f"member is {info.file_size} bytes, over the limit of {max_bytes}",
                    )
                else:
                    yield _read_zip_member(archive, info, max_bytes)


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> Member:
    name = normal_name(info.filename)
    try:
        with archive.open(info) as handle:
            data = handle.read(max_bytes + 1)  # the header's size can lie: never read past the limit
    except (zipfile.BadZipFile, zlib.error, OSError, NotImplementedError, EOFError) as exc:
        return Member(name, error=f"corrupt zip member: {exc}")
    if len(data) > max_bytes:
        return Member(name, error=f"member inflates past the limit of {max_bytes} bytes")
    return Member(name, data=data)


class _Peek:
    """A read-only stream wrapper that can look at the first bytes without consuming them."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._buffer = b""

    def peek(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self._stream.read(size - len(self._buffer))
            if not chunk:
                break
            self._buffer += chunk
        return self._buffer[:size]

    def read(self, size: int = -1) -> bytes:
        if self._buffer:
            if size < 0:
                out, self._buffer = self._buffer + self._stream.read(), b""
                return out
            out, self._buffer = self._buffer[:size], self._buffer[size:]
            if len(out) < size:
                out += self._stream.read(size - len(out))
            return out
        return self._stream.read(size)
