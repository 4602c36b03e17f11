"""An ended job's items in another selection or order than its input's: only one status, only items of
one class (predicted or explained), sorted by any numeric field the kind records (a probability, a
deletion AUC, a reconstruction error, a caption's log-probability, ...).

What a sort costs, and the decision taken. Sorting needs every item's value, so the first page of a
(filter, sort) pair reads the whole job once; every page after it must still cost O(page). Hence a
*view*: the first request streams the job's shard manifests once, writes each matching item to a
temporary file on local disk, keeps only a float and a file offset per item in memory (16 bytes,
1.6 MB for 100k items), sorts those, and stores the items in their new order in chunks of ``CHUNK``
under the job's folder, then a description (``view.json``, written last: its presence means the view
is whole). Later pages read the description and the one or two chunks they overlap, as cheap as an
index-order page. Views are made only for jobs that have ended, whose items can no longer change, so
a stored view is never stale; a running job pages in index order, by status. Building one costs a
read of every shard manifest (a couple of seconds for 100k items on a local disk); two requests for
the same view at once build it once per API process (the caller holds a lock), and two processes at
once write the same bytes.

Items without the sorted field (failed items, or an item of another shape) come last in either
direction; ties keep index order, so the order is stable and total.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.results import ItemStatus, Reader, ShardIndex, iter_shards
from shared.storage import Storage

CHUNK = 200
"""Items per stored chunk of a view: a gallery page (tens of items) reads one or two, parsing a few
hundred items at most."""

FIELD_PATTERN = r"^-?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_:]+){0,7}$"
"""A sort field: a dotted path into an item's record (list positions as numbers), ``-`` for descending."""
_FIELD = re.compile(FIELD_PATTERN)


@dataclass(frozen=True)
class ViewQuery:
    status: ItemStatus | None = None
    label: str | None = None
    """Only items whose predicted (top-1) or explained class has this index or name."""
    sort: str | None = None
    """A dotted path, ``-path`` for descending; None keeps index order."""

    def __post_init__(self) -> None:
        if self.sort is not None and not _FIELD.match(self.sort):
            raise ValueError(f"not a field path: {self.sort!r}")

    @property
    def plain(self) -> bool:
        """Index order, at most a status filter: what the shard index can page without a view."""
        return self.label is None and self.sort is None

    def wants_view(self, index: ShardIndex) -> bool:
        """Whether an ended job's page is better read from a view: a class or a sort always; a status
        filter that keeps under half the items too, since its page would read many shards to fill
        (1 item in 50 failed: a page of 48 spans some 40 shard manifests), where a view reads a chunk. That
        view is the finaliser's (``worker.engine.failed_view``); the API never builds one on request."""
        if not self.plain:
            return True
        return index.final and self.status is not None and sparse(index.count(self.status), index.total)

    @property
    def name(self) -> str:
        """The view's name in the store: a digest of what it selects and how it orders."""
        text = json.dumps([self.status, self.label, self.sort], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def matches(self, item: dict[str, Any]) -> bool:
        if self.status is not None and item.get("status") != self.status.value:
            return False
        return self.label is None or self.label in classes_of(item)

    def value(self, item: dict[str, Any]) -> float | None:
        return None if self.sort is None else numeric(item, self.sort.removeprefix("-"))

    def order(self, values: array[float]) -> list[int]:
        """Positions in sorted order: by value (NaN, no value, last), ties in their original order."""
        present = [i for i, v in enumerate(values) if not math.isnan(v)]
        missing = [i for i, v in enumerate(values) if math.isnan(v)]
        sign = -1.0 if self.sort is not None and self.sort.startswith("-") else 1.0
        present.sort(key=lambda i: sign * values[i])  # stable: equal values stay in index order
        return present + missing


def sparse(matching: int, total: int) -> bool:
    """Whether a status filter keeping ``matching`` of ``total`` items is read from a view: under half."""
    return matching * 2 < total


def numeric(item: dict[str, Any], path: str) -> float | None:
    """The finite number at ``path`` (``quality.deletion_auc``, ``predictions.0.probability``), else None."""
    value: Any = item
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def classes_of(item: dict[str, Any]) -> set[str]:
    """The item's predicted (top-1) and explained classes, each by index and by name."""
    found: set[str] = set()
    predictions = item.get("predictions")
    candidates: list[Any] = [predictions[0]] if isinstance(predictions, list) and predictions else []
    candidates += [item.get("target"), *(item.get("targets") or [])]
    candidates += [data.get("target") for data in (item.get("methods") or {}).values() if isinstance(data, dict)]
    for entry in candidates:
        if isinstance(entry, dict):
            found |= {str(entry[k]) for k in ("class", "name") if entry.get(k) is not None}
    return found


def in_memory(items: Iterable[dict[str, Any]], query: ViewQuery) -> list[dict[str, Any]]:
    """The view of a job small enough to hold (an older job with only its whole manifest)."""
    chosen = [item for item in items if query.matches(item)]
    values = array("d", (_or_nan(query.value(item)) for item in chosen))
    return [chosen[i] for i in query.order(values)]


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def read_view(storage: Storage, tenant: str, job_id: str, query: ViewQuery) -> dict[str, Any] | None:
    """The stored view's description (``total``, ``chunk``), or None when it was never built."""
    try:
        return dict(storage.get_json(keys.result_view(tenant, job_id, query.name)))
    except NotFound:
        return None


def build_view(
    storage: Storage, tenant: str, job_id: str, index: ShardIndex, query: ViewQuery, reader: Reader = map
) -> dict[str, Any]:
    """Stream the ended job once and store its matching items in the query's order (see the module's
    docstring for what this costs); returns the view's description."""
    if not index.final:
        raise ValueError("views are made of ended jobs only")
    offsets, values = array("q"), array("d")
    with tempfile.TemporaryFile() as spool:
        for _shard, items in iter_shards(storage, tenant, job_id, index, reader):
            for item in items:
                if query.matches(item):
                    offsets.append(spool.tell())
                    values.append(_or_nan(query.value(item)))
                    spool.write(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        order = query.order(values) if query.sort is not None else range(len(offsets))
        for chunk, start in enumerate(range(0, len(order), CHUNK)):
            rows = []
            for position in order[start : start + CHUNK]:
                spool.seek(offsets[position])
                rows.append(spool.readline().rstrip(b"\n"))  # each line is one item's JSON already
            store_chunk(storage, tenant, job_id, query, chunk, rows)
    return store_description(storage, tenant, job_id, query, len(offsets))


def store_chunk(storage: Storage, tenant: str, job_id: str, query: ViewQuery, chunk: int, rows: list[bytes]) -> None:
    """One chunk of a view: ``rows`` are its items' JSON, in the view's order."""
    body = b'{"items":[' + b",".join(rows) + b"]}"
    storage.put_bytes(keys.result_view(tenant, job_id, query.name, chunk), body, "application/json")


def store_description(storage: Storage, tenant: str, job_id: str, query: ViewQuery, total: int) -> dict[str, Any]:
    """A view's description, stored once all its chunks are (its presence means the view is whole)."""
    described = {"total": total, "chunk": CHUNK, "query": [query.status, query.label, query.sort]}
    storage.put_json(keys.result_view(tenant, job_id, query.name), described)
    return described


def view_page(
    storage: Storage,
    tenant: str,
    job_id: str,
    query: ViewQuery,
    described: dict[str, Any],
    offset: int,
    limit: int,
    reader: Reader = map,
) -> list[dict[str, Any]]:
    """Items ``offset`` to ``offset + limit`` of a stored view: only the chunks they lie in are read."""
    total, size = int(described["total"]), int(described["chunk"])
    stop = min(offset + limit, total)
    if offset >= stop:
        return []
    chunks = list(range(offset // size, (stop - 1) // size + 1))

    def read(chunk: int) -> list[dict[str, Any]]:
        return list(storage.get_json(keys.result_view(tenant, job_id, query.name, chunk))["items"])

    rows = [item for items in reader(read, chunks) for item in items]
    first = chunks[0] * size
    return rows[offset - first : stop - first]
