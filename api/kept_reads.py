"""What the API has read of a job that can no longer change, kept so that a page reads only its own
shards: an ended job's shard index (the finaliser's, written once) and summary, and a running job's
index once its whole input is planned (its shards' first items are then fixed; the finished shards'
counts are read fresh each time). Bounded: the most recently used few, a few bytes a shard each."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class KeptReads:
    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Any | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def keep(self, key: tuple[str, ...], value: Any) -> None:
        """Keep ``value``: the caller knows it can no longer change."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
