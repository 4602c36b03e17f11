"""Everything the routes share, built once at start-up from the settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from api.kept_reads import KeptReads
from api.queue import TaskQueue
from shared.coordination import Coordinator, open_coordinator
from shared.jobstore import JobStore
from shared.settings import Settings
from shared.storage import Storage, open_storage


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
