"""Read and decode the next items on a thread while the current batch computes (I/O and JPEG decoding
overlap the model; both release the GIL). Bounded: at most ``depth`` items wait, so memory stays one
batch ahead. The thread starts reading at once, so a shard's first batch is read while its bookkeeping
is still being done. An error in the producer is raised in the consumer; closing early (or leaving the
``with`` block) stops the producer and closes the source (its open stream) on the producer's own thread."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from worker.runtime.metrics import INPUT_WAIT_SECONDS

T = TypeVar("T")

_ITEM, _DONE, _ERROR = "item", "done", "error"


class Prefetch(Generic[T]):
    """``source``'s values, produced on a thread started now."""

    def __init__(self, source: Iterable[T], depth: int) -> None:
        self._slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._produce, args=(source,), name="fovea-prefetch", daemon=True)
        self._thread.start()

    def _put(self, entry: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, source: Iterable[T]) -> None:
        iterator = iter(source)
        try:
            for value in iterator:
                if not self._put((_ITEM, value)):
                    return
            self._put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put((_ERROR, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._ended:
            raise StopIteration
        start = time.perf_counter()
        kind, value = self._slots.get()
        INPUT_WAIT_SECONDS.inc(time.perf_counter() - start)
        if kind == _ITEM:
            return value  # type: ignore[no-any-return]
        self.close()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the producer (it closes its source) and wait for its thread."""
        self._ended = True
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
