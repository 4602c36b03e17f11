"""The view of an ended job's failed items, written by the finaliser as the items go by.

An ended job's page filtered by a status that keeps under half its items (its failures, as a rule) is
read from a view (``shared.result_views``): in index order it would read every shard holding one of its
items. Built on the first such request, a view costs a read of the whole job: more than 30 s at a
million items, longer than a client or a proxy waits. The finaliser reads every item anyway, so it
writes the failed items' view on its way, a chunk at a time (memory: one chunk). Once failures reach
half the job the view would never be read (a page of failures then reads few shards): it stops and
deletes what it wrote, at most half the job's failed items, which carry no outputs.

Only ``failed``: a view of the ``ok`` items would be written for every job and thrown away for nearly
all of them; a job whose successes are the few pages them through the shard index.
"""

from __future__ import annotations

import json
from typing import Any

from shared import keys, result_views
from shared.result_views import ViewQuery, sparse, store_chunk, store_description
from shared.results import ItemStatus
from shared.storage import Storage

FAILED = ViewQuery(ItemStatus.failed)


class FailedView:
    def __init__(self, storage: Storage, tenant: str, job_id: str, total: int) -> None:
        self.storage, self.tenant, self.job_id, self.total = storage, tenant, job_id, total
        self.count = 0
        self.chunks = 0
        self.rows: list[bytes] = []
        self.dropped = total == 0

    def add(self, item: dict[str, Any]) -> None:
        """A failed item, in index order."""
        if self.dropped:
            return
        self.count += 1
        if not sparse(self.count, self.total):
            self._drop()
            return
        self.rows.append(json.dumps(item, separators=(",", ":"), default=str).encode())
        if len(self.rows) == result_views.CHUNK:
            self._flush()

    def finish(self) -> None:
        """Store the last chunk and the description (its presence: the view is whole)."""
        if self.dropped:
            return
        if self.rows:
            self._flush()
        store_description(self.storage, self.tenant, self.job_id, FAILED, self.count)

    def _flush(self) -> None:
        store_chunk(self.storage, self.tenant, self.job_id, FAILED, self.chunks, self.rows)
        self.chunks += 1
        self.rows = []

    def _drop(self) -> None:
        self.dropped, self.rows = True, []
        prefix = keys.result_view(self.tenant, self.job_id, FAILED.name).rsplit("/", 1)[0] + "/"
        for info in list(self.storage.list(prefix)):
            self.storage.delete(info.key)
