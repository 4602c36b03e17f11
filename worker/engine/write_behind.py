"""A task's tail run on a thread while the worker takes its next task.

A shard's tail (storing its pack and its extras, recording its items, writing its manifest, counting
it) is round trips to the store and the coordinator only: about a tenth of a shard's time for a cheap
pipeline on packed outputs (BENCHMARKS.md, service overhead). Run here, it overlaps the next shard's
compute instead of holding it up. A planning step is round trips too (reading the input, storing shard
entries, sending shards): it runs whole on a thread of its own, so that a worker whose only pool child
planned a job takes the job's first shards while the rest is still being planned.

Nothing is lost by it: the task stays held (``worker.engine.tasking``) until its tail has run, its lease
renewed by its heartbeat and its work on record. A worker that dies first stops renewing; the reconciler
sends the work again (a shard's unrecorded items are redone; a planning step starts again from the
cursor its predecessor stored). At most one tail waits on each thread: handing over the next
waits for the previous, so a worker holds at most two shards' outputs, and the next task of a job is never
more than one tail behind. A worker process drains its tails before it exits (``worker.celery_app``).
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


_mine: dict[tuple[int, str], WriteBehind] = {}


def write_behind(purpose: str = "shards") -> WriteBehind:
    """This process's write-behind thread for ``purpose`` (a Celery pool child runs one task at a time):
    shards' tails on one, planning steps on another, so that neither waits for the other. Keyed by the
    process: a forked child never inherits its parent's, whose threads do not exist in the child."""
    pid = os.getpid()
    if any(owner != pid for owner, _ in _mine):
        _mine.clear()
    if (pid, purpose) not in _mine:
        _mine[pid, purpose] = WriteBehind()
    return _mine[pid, purpose]


def drain(timeout: float) -> None:
    """Wait (up to ``timeout`` each) for the tails this process has in hand."""
    pid = os.getpid()
    for (owner, _), behind in list(_mine.items()):
        if owner == pid:
            behind.wait(timeout)
