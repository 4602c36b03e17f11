"""The members of a job's input as planning sees them, readable from a cursor: planning stops after any
shard and a later step goes on from where it stopped.

Which input gets which reading (each member's ``row`` says how its shard finds it again):

- an uncompressed tar: read from the cursor's byte offset with a range read; a shard is a list of byte
  ranges of the original archive (``range``), nothing is copied;
- a zip: its central directory, read entry by entry from the cursor; a shard is a list of local-header
  offsets (``zip``), each member read back by range and inflated by the shard;
- a compressed tar (gzip, bzip2, xz): read from the start and skipped, uncompressed, to the cursor;
  its members are repacked into one plain tar per shard (``tar``), since a compressed stream cannot be
  entered in the middle;
- a prefix of an object store: listed from the last key planned (``keys``).
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared import keys
from shared.errors import InvalidInput, NotFound
from shared.settings import Settings
from shared.storage import Storage, open_storage
from worker.inputs.archive import detect_format, normal_name, skippable, unsafe_reason
from worker.inputs.tar_index import compression, decompressed, iter_tar
from worker.inputs.zip_directory import METHODS, ZipFormatError, iter_entries, locate_directory, read_member
from worker.runtime.sources import checked_location

END = {"done": True}
"""The cursor after the last member."""


@dataclass
class Planned:
    """One member: its name, why it cannot be an item (or None), and how to read it."""

    name: str
    error: str | None
    size: int
    row: list[Any]
    """What its shard keeps to find it (empty: the bytes are repacked into the shard's own tar)."""
    read: Callable[[], bytes]
    """Its bytes (valid until the next member is taken)."""
    cursor: dict[str, Any]
    """Where planning goes on after this member."""


@dataclass
class InputReader:
    source: str
    """How shards hold their items: ``range``, ``zip``, ``tar`` (repacked) or ``keys``."""
    location: dict[str, Any]
    """Where the input is: ``{"bucket": None or a bucket, "key": ...}`` (an archive) or the bucket of a prefix."""
    members: Iterator[Planned]
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def input_storage(settings: Settings, storage: Storage, bucket: str | None) -> Storage:
    """The store an input lives in: the service's own (uploads) or a bucket of the same S3 service."""
    return storage if bucket is None else open_storage(settings, bucket=bucket)


def open_reader(
    settings: Settings, storage: Storage, tenant: str, uri: str, cursor: dict[str, Any] | None
) -> InputReader:
    """The input's members from ``cursor`` on (None: from the start, the format found from its first bytes)."""
    location = _locate(settings, storage, tenant, uri)
    if "prefix" in location:
        return _prefix_reader(settings, location, cursor or {"format": "keys", "after": ""})
    source = input_storage(settings, storage, location["bucket"])
    if cursor is None:
        cursor = _first_cursor(source, location["key"], settings)
    if cursor.get("done"):
        return InputReader("tar", location, iter(()))
    if cursor["format"] == "zip":
        return _zip_reader(settings, source, location, cursor)
    return _tar_reader(settings, source, location, cursor)


def _locate(settings: Settings, storage: Storage, tenant: str, uri: str) -> dict[str, Any]:
    if uri.startswith("upload://"):
        upload_id = uri.removeprefix("upload://")
        found = next(iter(storage.list(keys.uploads_prefix(tenant, upload_id))), None)
        if found is None:
            raise InvalidInput(f"upload {upload_id} not found (or its content was never PUT)")
        return {"bucket": None, "key": found.key}
    if not uri.startswith("s3://"):
        raise InvalidInput(f"unsupported input {uri!r}")
    place = checked_location(uri, settings)
    if place.is_prefix:
        return {"bucket": place.bucket, "prefix": place.key}
    return {"bucket": place.bucket, "key": place.key}


def _first_cursor(source: Storage, key: str, settings: Settings) -> dict[str, Any]:
    try:
        with source.open(key, 0, 512) as stream:
            head = stream.read(512)
    except NotFound as exc:
        raise InvalidInput(f"input not found: {key.rsplit('/', 1)[-1]}") from exc
    name = key.rsplit("/", 1)[-1]
    kind = detect_format(head, name)
    if kind == "zip":
        size = source.size(key) or 0
        try:
            directory = locate_directory(lambda start, length: _read_range(source, key, start, length), size)
        except ZipFormatError as exc:
            raise InvalidInput(f"{name}: not a readable zip archive ({exc})") from exc
        end = directory.offset + directory.size
        start = directory.offset
        return {"format": "zip", "offset": start, "end": end, "left": directory.entries, "directory": start}
    if kind == "tar":
        return {"format": "tar", "compression": compression(head), "offset": 0}
    raise InvalidInput(f"{name}: not a tar, tar.gz or zip archive")


def _read_range(source: Storage, key: str, start: int, length: int) -> bytes:
    with source.open(key, start, length) as stream:
        return stream.read()


def _tar_reader(settings: Settings, source: Storage, location: dict[str, Any], cursor: dict[str, Any]) -> InputReader:
    method, offset, key = cursor.get("compression"), int(cursor["offset"]), location["key"]
    name = key.rsplit("/", 1)[-1]
    if method is None:
        stream = source.open(key, offset)
    else:
        raw = source.open(key)
        try:
            stream = decompressed(raw, method, offset)
        except (OSError, EOFError, ValueError) as exc:
            raw.close()
            raise InvalidInput(f"{name}: cannot be read again from where planning stopped ({exc})") from exc
    reader = InputReader("tar" if method else "range", location, iter(()), [stream.close])

    def members() -> Iterator[Planned]:
        try:
            for entry in iter_tar(stream, offset, name, max_bytes=settings.max_item_bytes):
                after = END if entry.next_offset < 0 else {**cursor, "offset": entry.next_offset}
                row = [] if method else [entry.data_offset, entry.size]
                yield Planned(entry.name, entry.error, entry.size, row, entry.read, after)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc

    reader.members = members()
    return reader


def _zip_reader(settings: Settings, source: Storage, location: dict[str, Any], cursor: dict[str, Any]) -> InputReader:
    key, offset, end, left = location["key"], int(cursor["offset"]), int(cursor["end"]), int(cursor["left"])
    stream = source.open(key, offset, end - offset)
    limit = settings.max_item_bytes

    def members() -> Iterator[Planned]:
        position, remaining = offset, left
        try:
            for entry, length in iter_entries(stream, left):
                position, remaining = position + length, remaining - 1
                after = {**cursor, "offset": position, "left": remaining} if remaining else END
                if entry.is_dir or skippable(entry.name):
                    continue
                name = normal_name(entry.name)
                error = unsafe_reason(entry.name)
                if error:
                    name = entry.name
                elif stat.S_ISLNK(entry.external_attr >> 16):
                    error = "link member refused"
                elif entry.flags & 0x1:
                    error = "encrypted zip member"
                elif entry.method not in METHODS:
                    error = f"zip compression method {entry.method} is not supported (stored, deflate, bzip2, lzma)"
                elif entry.size > limit:
                    error = f"member is {entry.size} bytes, over the limit of {limit}"
                row = entry.as_row()

                def read(row: list[int] = row) -> bytes:
                    with source.open(key, row[0], zip_member_span(row, end)) as member:
                        return read_member(member, row, limit)

                yield Planned(name, error, entry.size, row, read, after)
        except ZipFormatError as exc:
            raise InvalidInput(f"{key.rsplit('/', 1)[-1]}: {exc}") from exc

    return InputReader("zip", {**location, "directory": int(cursor["directory"])}, members(), [stream.close])


def zip_member_span(row: list[int], directory_offset: int) -> int:
    """Bytes to read from a member's local header to have all of it: the header, its name and extra field
    (at most 64 KiB each) and the compressed bytes; never past the central directory."""
    offset, compressed = row[0], row[1]
    return max(0, min(30 + 2 * 65535 + compressed, directory_offset - offset))


def _prefix_reader(settings: Settings, location: dict[str, Any], cursor: dict[str, Any]) -> InputReader:
    source = open_storage(settings, bucket=location["bucket"])
    prefix, limit = location["prefix"], settings.max_item_bytes

    def members() -> Iterator[Planned]:
        for info in source.list(prefix, start_after=cursor["after"] or ""):
            after = {"format": "keys", "after": info.key}
            if info.key.endswith("/"):
                continue
            name = info.key[len(prefix) :]
            error = unsafe_reason(name)
            if error is None and info.size > limit:
                error = f"object is {info.size} bytes, over the limit of {limit}"

            def read(key: str = info.key) -> bytes:
                return source.get_bytes(key)

            yield Planned(name, error, info.size, [info.key], read, after)

    return InputReader("keys", {"bucket": location["bucket"]}, members())
