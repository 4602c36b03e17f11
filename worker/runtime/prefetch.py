"""Read and decode the next items on a thread while the current batch computes (I/O and JPEG decoding
overlap the model; both release the GIL). Bounded: at most ``depth`` items wait, so memory stays one
batch ahead. An error in the producer is raised in the consumer; leaving early stops the producer and
closes the source (its open stream) on the producer's own thread."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from worker.runtime.metrics import INPUT_WAIT_SECONDS

T = TypeVar("T")

_ITEM, _DONE, _ERROR = "item", "done", "error"


def prefetch(source: Iterable[T], depth: int) -> Iterator[T]:
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(source)
        try:
            for value in iterator:
                if not put((_ITEM, value)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((_ERROR, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="fovea-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            start = time.perf_counter()
            kind, value = slots.get()
            INPUT_WAIT_SECONDS.inc(time.perf_counter() - start)
            if kind == _DONE:
                return
            if kind == _ERROR:
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=10)
