"""Reading a shard's items: from its repacked tar, from the object-store keys it lists, or (render
targets) nothing at all; each decoded to an image, or to the ItemError that says why it has none. Store
outages are not items' faults: they propagate (Retryable), and the shard is run again later."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from shared import keys
from shared.errors import ItemError, NotFound, StoreRefused
from shared.storage import open_storage
from worker.inputs.decode import decode_image
from worker.runtime.services import Services

NO_IMAGE = np.zeros((0, 0, 3), dtype=np.uint8)


def decoded_items(
    services: Services,
    tenant: str,
    job_id: str,
    shard: int,
    entry: dict[str, Any],
    wanted: set[int],
    is_targets: bool,
) -> Iterator[tuple[int, np.ndarray | ItemError]]:
    """Each wanted item's decoded image, or the ItemError that says why it has none."""
    settings = services.settings
    for index, data in _read(services, tenant, job_id, shard, entry, wanted):
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
    services: Services, tenant: str, job_id: str, shard: int, entry: dict[str, Any], wanted: set[int]
) -> Iterator[tuple[int, bytes | Exception]]:
    if not wanted:
        return
    if entry["source"] == "targets":
        yield from ((int(row[0]), b"") for row in entry["items"] if int(row[0]) in wanted)
        return
    if entry["source"] == "keys":
        source = open_storage(services.settings, bucket=entry["bucket"])  # one client for the whole shard
        for index, _name, key, *_truth in entry["items"]:
            if index in wanted:
                try:
                    yield int(index), source.get_bytes(key)
                except NotFound:
                    yield int(index), ItemError("object disappeared from the store before it was read")
                except StoreRefused as exc:  # this object's own key or permissions, not an outage
                    yield int(index), ItemError(str(exc))
        return
    with (
        services.storage.open(keys.shard_input(tenant, job_id, shard)) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        for info in tar:
            index = int(info.name)
            if index in wanted:
                handle = tar.extractfile(info)
                yield index, handle.read() if handle else b""
