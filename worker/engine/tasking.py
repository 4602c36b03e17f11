"""How a worker runs one task of a job so that no outage or death can lose it.

- It takes the task's lease (a live holder elsewhere means the task is being done: nothing to do) and marks
  the task's work running, in one round trip; a heartbeat renews the lease while the task runs. A worker that dies stops
  renewing: the lease expires and the reconciler sends the work again.
- A task whose work is no longer on record was done already (its successor is on record): it is skipped.
- Outages (``Retryable``: the store or the coordinator unreachable) are waited out in the task, with a
  capped backoff, for as long as the task's time limit allows; then the task hands its work back to the
  queue instead of failing. No retry count can drop work; but a task that is handed back still failing
  while the store and the coordinator answer others takes a strike, and the watchdog (the reconciler)
  gives up on it after a few, with its last error, so that it cannot go round for ever.
- Work may return a tail (``worker.engine.write_behind``): with a write-behind, the task returns at once and
  stays held (lease, heartbeat, work on record) until its tail has run on that thread. A tail that fails
  (an outage included) hands the work back: the shard runs again and redoes what the tail did not record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from shared.errors import Retryable
from shared.work import WorkEntry, lease_name, take_work
from worker.engine.write_behind import Tail, WriteBehind
from worker.runtime import metrics
from worker.runtime.services import Services

log = logging.getLogger(__name__)


class Heartbeat:
    """Renews a lease every third of its time to live, on a thread, until stopped."""

    def __init__(self, services: Services, lease: str, owner: str, ttl_s: float) -> None:
        self.services, self.lease, self.owner, self.ttl_s = services, lease, owner, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="fovea-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.services.coordinator.renew_lease(self.lease, self.owner, self.ttl_s):
                    log.warning(
                        "lease %s was lost; the work may run twice (harmless: items are recorded once)", self.lease
                    )
                    self.services.coordinator.acquire_lease(self.lease, self.owner, self.ttl_s)
            except Retryable:
                continue  # the coordinator is away; the task itself waits it out

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_held(
    services: Services,
    job: str,
    task_id: str,
    work: Callable[[], Tail | None],
    deadline: float,
    behind: WriteBehind | None = None,
) -> None:
    """Run ``work`` as the task ``task_id`` of ``job`` (see the module docstring). ``deadline`` is a
    ``time.monotonic()`` value by which the task must have returned (its time limit, less a margin). The
    tail ``work`` returns runs on ``behind`` if given, else here, as part of the work."""
    settings, coordinator = services.settings, services.coordinator
    owner, lease = new_owner(), lease_name(job, task_id)
    backoff = _Backoff(settings.retry_backoff_max_s, metrics.task_label(task_id))
    while True:  # take the lease, waiting out a coordinator outage
        try:
            taken = take_work(coordinator, job, task_id, owner, settings.lease_ttl_s)
            if taken.held_elsewhere:
                log.info("%s of %s is held by a live worker: nothing to do", task_id, job)
                return
            if taken.entry is None:
                return  # done already
            break
        except Retryable as exc:
            if not backoff.wait(deadline, f"{task_id} of {job}", exc):
                return  # still on record as queued: the reconciler sends it again
    held = _Held(services, job, task_id, lease, owner)
    handed_over = False
    try:
        while True:  # the lease is held throughout, so nobody counts this task as dead meanwhile
            try:
                tail = work()
                if tail is not None and behind is None:
                    tail()
                elif tail is not None and behind is not None:
                    behind.submit(held.tail(tail))
                    handed_over = True  # the tail releases the lease
                return
            except Retryable as exc:
                if not backoff.wait(deadline, f"{task_id} of {job}", exc):
                    _hand_back(services, job, task_id, failing=exc)
                    return
    finally:
        if not handed_over:
            held.release()


class _Held:
    """A task's lease and the heartbeat renewing it, until released."""

    def __init__(self, services: Services, job: str, task_id: str, lease: str, owner: str) -> None:
        self.services, self.job, self.task_id, self.lease, self.owner = services, job, task_id, lease, owner
        self.heartbeat = Heartbeat(services, lease, owner, services.settings.lease_ttl_s)
        self.heartbeat.start()

    def release(self) -> None:
        self.heartbeat.stop()
        _release(self.services, self.lease, self.owner)

    def tail(self, tail: Tail) -> Tail:
        """``tail`` run held, then released; failing, the work is handed back (after the release, so that
        its next delivery does not find it held)."""

        def run() -> None:
            failure: Exception | None = None
            try:
                tail()
            except Exception as exc:
                failure = exc
                log.warning("the tail of %s of %s failed; sent again: %s", self.task_id, self.job, exc)
            finally:  # whatever happened: a lease renewed for a tail that is gone would hold its work for ever
                self.release()
            if failure is not None:
                _hand_back(self.services, self.job, self.task_id, failing=failure)

        return run


class _Backoff:
    def __init__(self, longest_s: float, task: str) -> None:
        self.next_s, self.longest_s, self.task = 1.0, longest_s, task

    def wait(self, deadline: float, what: str, exc: Exception) -> bool:
        """Sleep before the next try; False when the deadline does not leave time for it."""
        if time.monotonic() + self.next_s > deadline:
            return False
        log.warning("%s waits %.0f s for an outage: %s", what, self.next_s, exc)
        metrics.RETRIES.labels(self.task, "outage").inc()
        metrics.OUTAGE_WAIT_SECONDS.labels(self.task).inc(self.next_s)
        time.sleep(self.next_s)
        self.next_s = min(self.next_s * 2, self.longest_s)
        return True


def hand_back(services: Services, job: str, task_id: str) -> None:
    """Send the task's work again (to the back of the queue): it could not finish within this delivery."""
    _hand_back(services, job, task_id)


def _hand_back(services: Services, job: str, task_id: str, failing: Exception | None = None) -> None:
    """Send the work again. When it is handed back still ``failing`` with a transient error although the
    store and the coordinator answer a probe, it is not an outage: the entry takes a strike, and the
    reconciler's watchdog gives up on it after ``FOVEA_MAX_STRIKES`` (an outage never counts)."""
    try:
        found = services.coordinator.work_entry(job, task_id)
        if found is None:
            return
        current = WorkEntry.of(found)
        strikes, last_error = current.strikes, current.last_error
        if failing is not None and services.reachable():
            strikes, last_error = strikes + 1, str(failing)[:500]
        services.submit(job, task_id, current.task, tuple(current.args), current.deaths, strikes, last_error)
        metrics.REDELIVERIES.labels(metrics.task_label(task_id), "handed_back").inc()
        log.info("%s of %s handed back to the queue (strikes: %d)", task_id, job, strikes)
    except Retryable:
        # Even the coordinator is away: the work stays on record as running, its lease expires, and the
        # reconciler sends it again once the coordinator is back.
        log.warning("%s of %s could not be handed back; the reconciler will resend it", task_id, job)


def _release(services: Services, lease: str, owner: str) -> None:
    with contextlib.suppress(Retryable):  # unreachable: it expires on its own
        services.coordinator.release_lease(lease, owner)
