"""Shard indexes the API has read, kept while they cannot change: an ended job's (the finaliser's, written
once) and a running job's once its whole input is planned (its shards' first items are then fixed; the
finished shards' counts are read fresh each time). A page then reads only its shards' manifests.
Bounded: the most recently used few, a few bytes a shard each."""

from __future__ import annotations

import threading
from collections import OrderedDict

from shared.results import ShardIndex


class IndexCache:
    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], ShardIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant: str, job_id: str) -> ShardIndex | None:
        with self._lock:
            found = self._entries.get((tenant, job_id))
            if found is not None:
                self._entries.move_to_end((tenant, job_id))
            return found

    def keep(self, tenant: str, job_id: str, index: ShardIndex) -> None:
        """Keep ``index`` if it can no longer change (final, or planned with no counts attached)."""
        if not (index.final or (index.planned and not index.counts)):
            return
        with self._lock:
            self._entries[(tenant, job_id)] = index
            self._entries.move_to_end((tenant, job_id))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
