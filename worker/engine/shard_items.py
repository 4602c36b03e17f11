"""Reading a shard's items: from its repacked tar, from the object-store keys it lists, by byte range from
the original archive (an uncompressed tar or a zip), or (render targets) nothing at all; each decoded to an
image, or to the ItemError that says why it has none. Store outages are not items' faults: they propagate
(Retryable), and the shard is run again later.

Reading starts before the shard's record says which items are still to do (``Wanted``), so that its first
batch is read and decoded while the worker does the bookkeeping. Until then every item counts as wanted
where that costs no extra request (a repacked tar or a byte range is read whole either way; on a
redelivery the range may start at the shard's first member instead of its first unfinished one, and a
few finished items may be decoded for nothing); object-store keys wait for the answer, one GET each.
The consumer keeps only the items still to do."""

from __future__ import annotations

import tarfile
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from shared import keys
from shared.errors import ItemError, NotFound, StoreRefused
from shared.storage import open_storage
from worker.engine.plan_readers import input_storage, zip_member_span
from worker.inputs.decode import decode_image
from worker.inputs.zip_directory import read_member
from worker.runtime.services import Services

NO_IMAGE = np.zeros((0, 0, 3), dtype=np.uint8)


class Wanted:
    """The shard's items still to do, known once its record has been read (``known``); until then any item
    may be."""

    def __init__(self) -> None:
        self._known = threading.Event()
        self._items: frozenset[int] = frozenset()

    def known(self, items: set[int]) -> None:
        self._items = frozenset(items)
        self._known.set()

    def may_be(self, index: int) -> bool:
        return not self._known.is_set() or index in self._items

    def wait(self) -> frozenset[int]:
        self._known.wait()
        return self._items


def decoded_items(
    services: Services,
    tenant: str,
    job_id: str,
    shard: int,
    entry: dict[str, Any],
    wanted: Wanted,
    is_targets: bool,
) -> Iterator[tuple[int, np.ndarray | ItemError]]:
    """Each wanted item's decoded image, or the ItemError that says why it has none (and, until ``wanted``
    is known, maybe some unwanted ones: see the module's docstring)."""
    settings = services.settings
    for index, data in _read(services, tenant, job_id, shard, entry, wanted):
        if not wanted.may_be(index):
            continue
        if is_targets:
            yield index, NO_IMAGE
            continue
        try:
            if isinstance(data, Exception):
                raise data
            yield index, decode_image(data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_item_bytes)
        except ItemError as exc:
            yield index, exc


def _read(
    services: Services, tenant: str, job_id: str, shard: int, entry: dict[str, Any], wanted: Wanted
) -> Iterator[tuple[int, bytes | Exception]]:
    source = entry["source"]
    if source == "targets":
        yield from ((int(row[0]), b"") for row in entry["items"] if int(row[0]) in wanted.wait())
    elif source == "keys":
        yield from _read_keys(services, entry, wanted.wait())
    elif source in ("range", "zip"):
        yield from _read_ranges(services, entry, wanted)
    else:
        with (
            services.storage.open(keys.shard_input(tenant, job_id, shard)) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            for info in tar:
                index = int(info.name)
                if wanted.may_be(index):
                    handle = tar.extractfile(info)
                    yield index, handle.read() if handle else b""


def _read_keys(
    services: Services, entry: dict[str, Any], wanted: frozenset[int]
) -> Iterator[tuple[int, bytes | Exception]]:
    if not wanted:
        return
    source = open_storage(services.settings, bucket=entry["bucket"])  # one client for the whole shard
    for index, _name, key in entry["items"]:
        if index in wanted:
            try:
                yield int(index), source.get_bytes(key)
            except NotFound:
                yield int(index), ItemError("object disappeared from the store before it was read")
            except StoreRefused as exc:  # this object's own key or permissions, not an outage
                yield int(index), ItemError(str(exc))


def _read_ranges(services: Services, entry: dict[str, Any], wanted: Wanted) -> Iterator[tuple[int, bytes | Exception]]:
    """Members of the original archive, by byte range: one range read from the shard's first wanted member
    to the end of its last (the members of a shard lie together), skipping what is not wanted."""
    where = entry["object"]
    source = input_storage(services.settings, services.storage, where["bucket"])
    rows = sorted((row for row in entry["items"] if wanted.may_be(int(row[0]))), key=lambda row: int(row[2]))
    if not rows:
        return
    is_zip = entry["source"] == "zip"
    limit = services.settings.max_item_bytes
    if is_zip:
        directory = int(where["directory"])
        spans = [(int(row[2]), int(row[2]) + zip_member_span(row[2:], directory)) for row in rows]
    else:
        spans = [(int(row[2]), int(row[2]) + int(row[3])) for row in rows]
    first, last = spans[0][0], max(stop for _, stop in spans)
    try:
        stream = source.open(where["key"], first, last - first)
    except NotFound:
        for row in rows:
            yield int(row[0]), ItemError("the input archive disappeared from the store before it was read")
        return
    with stream:
        reader = _Forward(stream, first)
        for row, (start, stop) in zip(rows, spans, strict=True):
            reader.skip_to(start)
            if not is_zip:
                data = reader.read(stop - start)
                yield (
                    int(row[0]),
                    data if len(data) == stop - start else ItemError("input archive ends early (changed?)"),
                )
                continue
            try:
                yield int(row[0]), read_member(reader, row[2:], limit)  # type: ignore[arg-type]
            except ValueError as exc:
                yield int(row[0]), ItemError(str(exc))


class _Forward:
    """A stream read forward only, knowing where in the archive it stands."""

    def __init__(self, stream: Any, position: int) -> None:
        self._stream, self.position = stream, position

    def skip_to(self, offset: int) -> None:
        while self.position < offset:
            chunk = self._stream.read(min(offset - self.position, 1 << 20))
            if not chunk:
                return
            self.position += len(chunk)

    def read(self, count: int) -> bytes:
        data = self._stream.read(count)
        while 0 < len(data) < count:
            more = self._stream.read(count - len(data))
            if not more:
                break
            data += more
        self.position += len(data)
        return bytes(data)
