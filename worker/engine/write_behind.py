"""A task's tail run on a thread while the worker takes its next task.

A shard's tail (storing its pack and its extras, recording its items, writing its manifest, counting
it) is round trips to the store and the coordinator only: about a tenth of a shard's time for a cheap
pipeline on packed outputs (BENCHMARKS.md, service overhead). Run here, it overlaps the next shard's
compute instead of holding it up.

Nothing is lost by it: the task stays held (``worker.engine.tasking``) until its tail has run, its lease
renewed by its heartbeat and its work on record. A worker that dies first stops renewing; the reconciler
sends the shard again and its unrecorded items are redone. At most one tail waits: handing over the next
waits for the previous, so a worker holds at most two shards' outputs, and the next task of a job is never
more than one tail behind. A worker process drains its tail before it exits (``worker.celery_app``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

Tail = Callable[[], None]
"""What is left of a task once its compute is done; it handles its own errors (see ``tasking``)."""


class WriteBehind:
    """One thread running one tail at a time."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fovea-write-behind")
        self._pending: Future[None] | None = None
        self._lock = threading.Lock()

    def submit(self, tail: Tail) -> None:
        """Run ``tail`` on the thread, once the previous tail has finished."""
        with self._lock:
            self.wait()
            self._pending = self._executor.submit(_logged, tail)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the tail in hand (if any); False if it is still running after ``timeout``."""
        pending = self._pending
        if pending is None:
            return True
        try:
            pending.result(timeout)
        except TimeoutError:
            return False
        return True


def _logged(tail: Tail) -> None:
    try:
        tail()
    except BaseException:  # a tail handles its own errors: this is a bug, and the thread must live on
        log.exception("a task's tail failed")


_mine: dict[int, WriteBehind] = {}


def write_behind() -> WriteBehind:
    """This process's one write-behind thread (a Celery pool child runs one task at a time). Keyed by the
    process: a forked child never inherits its parent's, whose thread does not exist in the child."""
    pid = os.getpid()
    if pid not in _mine:
        _mine.clear()
        _mine[pid] = WriteBehind()
    return _mine[pid]
