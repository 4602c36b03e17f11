"""Everything the routes share, built once at start-up from the settings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from api.kept_reads import KeptReads
from api.queue import TaskQueue
from shared.coordination import Coordinator, open_coordinator
from shared.jobstore import JobStore
from shared.settings import Settings
from shared.storage import Storage, open_storage

R = TypeVar("R")


@dataclass
class AppState:
    settings: Settings
    storage: Storage
    coordinator: Coordinator
    queue: TaskQueue
    jobs: JobStore
    tenants: dict[str, str]
    readers: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16, thread_name_prefix="fovea-read"))
    """Store reads a request makes at once (a results page's shard manifests), not one after another."""
    kept: KeptReads = field(default_factory=KeptReads)
    """Shard indexes and summaries that can no longer change, so that a page reads only its own shards."""

    _builds: dict[tuple[str, ...], threading.Lock] = field(default_factory=dict)
    _builds_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def many_reads(self) -> Callable[[Callable[[str], R], list[str]], Iterable[R]]:
        """How a request reads many small objects (a jobs page's records): at once on the reader threads
        where each read waits on the network, one after another where reads are local (threads made a
        page of 50 local records three times slower on two cores)."""
        return self.readers.map if self.storage.calls_wait_on_network else map

    @contextmanager
    def building(self, key: tuple[str, ...]) -> Iterator[None]:
        """Held while this process builds something once for everyone (a job's sorted view)."""
        with self._builds_lock:
            lock = self._builds.setdefault(key, threading.Lock())
        try:
            with lock:
                yield
        finally:
            with self._builds_lock:
                if not lock.locked():
                    self._builds.pop(key, None)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        storage = open_storage(settings)
        coordinator = open_coordinator(settings)
        return cls(
            settings=settings,
            storage=storage,
            coordinator=coordinator,
            queue=TaskQueue(settings),
            jobs=JobStore(storage, coordinator),
            tenants=settings.tenant_for_key(),
        )
