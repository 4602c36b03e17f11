"""The store as a worker sees it, every request timed (``fovea_store_request_seconds``): how long the
worker waits for the store, by operation, retries inside the client included."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

from shared.storage import Storage
from shared.storage.base import ObjectInfo
from worker.runtime.metrics import STORE_SECONDS

T = TypeVar("T")


class TimedStorage(Storage):
    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # what a backend has beyond the interface (bucket, ...)
        return getattr(self.inner, name)

    @property
    def calls_wait_on_network(self) -> bool:  # type: ignore[override]
        return self.inner.calls_wait_on_network

    def _timed(self, operation: str, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return call()
        finally:
            STORE_SECONDS.labels(operation).observe(time.perf_counter() - start)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._timed("put", lambda: self.inner.put_bytes(key, data, content_type))

    def put_stream(self, key: str, stream: IO[bytes], content_type: str = "application/octet-stream") -> int:
        return self._timed("put", lambda: self.inner.put_stream(key, stream, content_type))

    def get_bytes(self, key: str) -> bytes:
        return self._timed("get", lambda: self.inner.get_bytes(key))

    def open(self, key: str, start: int = 0, length: int | None = None) -> IO[bytes]:
        return self._timed("open", lambda: self.inner.open(key, start, length))

    def size(self, key: str) -> int | None:
        return self._timed("head", lambda: self.inner.size(key))

    def list(self, prefix: str, start_after: str = "", limit: int | None = None) -> Iterator[ObjectInfo]:
        return _timed_steps(self.inner.list(prefix, start_after, limit))

    def keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        return _timed_steps(self.inner.keys(prefix, start_after))

    def delete(self, key: str) -> None:
        self._timed("delete", lambda: self.inner.delete(key))

    def presign_get(self, key: str, expires_s: int) -> str:
        return self.inner.presign_get(key, expires_s)

    def presign_put(self, key: str, expires_s: int) -> str:
        return self.inner.presign_put(key, expires_s)

    def ping(self) -> None:
        self._timed("ping", self.inner.ping)


def _timed_steps(listing: Iterable[T]) -> Iterator[T]:
    """A listing's steps timed as store lists (each may fetch a page), not the caller's work between them."""
    steps = iter(listing)
    while True:
        start = time.perf_counter()
        try:
            entry = next(steps)
        except StopIteration:
            return
        finally:
            STORE_SECONDS.labels("list").observe(time.perf_counter() - start)
        yield entry
