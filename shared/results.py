"""A job's items as its shards hold them: every item once, in index order, read shard by shard.

Each shard covers a contiguous range of item indices: the shard index (the first index of every shard,
and once a shard has finished, how many of its items are ok and how many failed) says which shards a
page overlaps, so a page at any offset reads the index and only those shards' manifests. What a page
costs grows with the page (and the index with the number of shards: a few bytes each), never with the
items of the job.

Where the index comes from:

- an ended job: ``index.json``, written by the finaliser once every item is final (``final``);
- a running job: ``plan.json`` (the shards planned so far) and, for a page filtered by status, the
  coordinator's counts of the shards finished so far. A shard not finished yet shows all its items as
  ``pending`` (with their names), members planning refused included: they count when their shard does.

The API pages through this; the finaliser streams the whole job through it.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.storage import Storage


class ItemStatus(StrEnum):
    ok = "ok"
    failed = "failed"
    pending = "pending"


PENDING = ItemStatus.pending.value


@dataclass(frozen=True)
class ShardIndex:
    total: int
    """Items planned so far (all of them once ``planned``)."""
    starts: list[int]
    """The first item index of each shard."""
    planned: bool
    """The whole input is planned: ``total`` and ``starts`` no longer grow."""
    final: bool
    """Written by the finaliser: every item is ok or failed, none pending."""
    counts: dict[int, tuple[int, int]]
    """(ok, failed) of each finished shard (every shard, once ``final``)."""

    def size(self, shard: int) -> int:
        stop = self.starts[shard + 1] if shard + 1 < len(self.starts) else self.total
        return stop - self.starts[shard]

    def matching(self, shard: int, status: ItemStatus) -> int:
        """How many items of the shard have ``status``."""
        counts = self.counts.get(shard)
        if counts is None:
            return self.size(shard) if status is ItemStatus.pending else 0
        return {ItemStatus.ok: counts[0], ItemStatus.failed: counts[1], ItemStatus.pending: 0}[status]

    def count(self, status: ItemStatus | None) -> int:
        """Items with ``status`` (all items planned so far for None)."""
        if status is None:
            return self.total
        return sum(self.matching(shard, status) for shard in range(len(self.starts)))


def write_index(
    storage: Storage, tenant: str, job_id: str, starts: list[int], total: int, counts: list[list[int]]
) -> None:
    """The finaliser's index of an ended job: every shard's first item and its (ok, failed) counts."""
    storage.put_json(keys.results_index(tenant, job_id), {"total": total, "starts": starts, "counts": counts})


def read_index(storage: Storage, tenant: str, job_id: str) -> ShardIndex | None:
    """The finaliser's index (None while the job has not been finalised)."""
    try:
        found = storage.get_json(keys.results_index(tenant, job_id))
    except NotFound:
        return None
    counts = {shard: (int(ok), int(failed)) for shard, (ok, failed) in enumerate(found["counts"])}
    return ShardIndex(int(found["total"]), [int(s) for s in found["starts"]], True, True, counts)


def read_plan(
    storage: Storage, tenant: str, job_id: str, counts: dict[int, tuple[int, int]] | None = None
) -> ShardIndex | None:
    """A running job's index from its plan as it stands, with the finished shards' ``counts`` (from the
    coordinator, when a page filters by status). None before planning stored anything, and for a job
    planned before shards covered index ranges (its whole manifest is then the only index)."""
    try:
        plan = storage.get_json(keys.plan(tenant, job_id))
    except NotFound:
        return None
    if "starts" not in plan:
        return None
    starts = [int(s) for s in plan["starts"]]
    return ShardIndex(int(plan["total"]), starts, bool(plan.get("complete", True)), False, counts or {})


def shard_items(
    storage: Storage, tenant: str, job_id: str, shard: int, finished: bool | None = None
) -> list[dict[str, Any]]:
    """The shard's items in index order: final results once the shard has finished, else every item
    ``pending``. ``finished`` says which the caller's index holds (None: whatever the store holds now), so
    that a page and its counts agree."""
    if finished is not False:
        try:
            return list(storage.get_json(keys.shard_manifest(tenant, job_id, shard))["items"])
        except NotFound:
            if finished:
                raise
    entry = storage.get_json(keys.shard_entries(tenant, job_id, shard))
    rows = [(int(row[0]), str(row[1])) for row in entry["items"]]
    rows += [(int(error["index"]), str(error["name"])) for error in entry.get("errors", [])]
    return [{"index": index, "name": name, "status": PENDING} for index, name in sorted(rows)]


Reader = Callable[[Callable[[int], list[dict[str, Any]]], list[int]], Iterable[list[dict[str, Any]]]]
"""Reads shards: ``reader(read_one, shards)`` gives each shard's items, in order (``map``, or an executor's
``map`` to read a page's few shards at once)."""


def page(
    storage: Storage,
    tenant: str,
    job_id: str,
    index: ShardIndex,
    offset: int,
    limit: int,
    status: ItemStatus | None = None,
    reader: Reader = map,
) -> list[dict[str, Any]]:
    """Items ``offset`` to ``offset + limit`` of those with ``status`` (of all items for None), in index
    order. The index says which shards hold them; only those are read."""
    needed: list[tuple[int, int]] = []  # (shard, matching items of it to skip)
    first = 0 if status is not None or not index.starts else max(0, bisect.bisect_right(index.starts, offset) - 1)
    seen, wanted = (index.starts[first] if index.starts else 0), offset + limit
    for shard in range(first, len(index.starts)):
        matching = index.size(shard) if status is None else index.matching(shard, status)
        if seen + matching > offset and matching:
            needed.append((shard, max(0, offset - seen)))
        seen += matching
        if seen >= wanted:
            break

    def read(shard: int) -> list[dict[str, Any]]:
        finished = True if index.final else (None if status is None else shard in index.counts)
        return shard_items(storage, tenant, job_id, shard, finished)

    out: list[dict[str, Any]] = []
    for (_shard, skip), items in zip(needed, reader(read, [shard for shard, _ in needed]), strict=True):
        chosen = [item for item in items if status is None or item["status"] == status.value]
        out += chosen[skip : skip + limit - len(out)]
    return out


def read_ahead(pool: Executor, depth: int) -> Reader:
    """A reader that keeps ``depth`` shards being read ahead of the one in use (memory: ``depth`` shards)."""

    def reader(read: Callable[[int], list[dict[str, Any]]], shards: list[int]) -> Iterator[list[dict[str, Any]]]:
        waiting: deque[Future[list[dict[str, Any]]]] = deque()
        upcoming = iter(shards)
        for shard in islice(upcoming, depth):
            waiting.append(pool.submit(read, shard))
        while waiting:
            items = waiting.popleft().result()
            following = next(upcoming, None)
            if following is not None:
                waiting.append(pool.submit(read, following))
            yield items

    return reader


def iter_shards(
    storage: Storage, tenant: str, job_id: str, index: ShardIndex, reader: Reader = map
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Every shard's final items in index order (``reader`` may read ahead; it decides how many shards are
    in memory). Raises RuntimeError when an index is missing or repeated (a shard manifest that does not
    hold what the plan says)."""
    expected = 0
    shards = list(range(len(index.starts)))
    read = lambda shard: shard_items(storage, tenant, job_id, shard, finished=True)  # noqa: E731
    for shard, items in zip(shards, reader(read, shards), strict=True):
        for item in items:
            if int(item["index"]) != expected:
                raise RuntimeError(f"job {job_id}: shard {shard} has item {item['index']} where {expected} was due")
            expected += 1
        yield shard, items
    if expected != index.total:
        raise RuntimeError(f"job {job_id}: {index.total - expected} items missing from the shard manifests")
