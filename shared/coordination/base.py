"""The coordinator interface. Every write is idempotent, so a redelivered task can repeat it safely."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TakenWork:
    """What taking a task found (``Coordinator.take_work``)."""

    held_elsewhere: bool
    """A live worker holds the task's lease: nothing was changed."""
    entry: dict[str, Any] | None
    """The task's work entry with the changes made; None when it is no longer outstanding (done already:
    the lease is not kept)."""


@dataclass(frozen=True)
class LiveProgress:
    total: int | None
    done: int
    failed: int
    shards: int | None
    shards_done: int


class Coordinator(ABC):
    @abstractmethod
    def ping(self) -> None:
        """Raises shared.errors.Retryable when unreachable."""

    @abstractmethod
    def get_status(self, job: str) -> str | None: ...

    @abstractmethod
    def set_status(self, job: str, status: str, only_from: frozenset[str] | None = None) -> bool:
        """Set the status; with ``only_from``, only if the current one is in it (or unset). True if set."""

    @abstractmethod
    def set_plan(self, job: str, total: int, shards: int) -> None: ...

    @abstractmethod
    def record_items(self, job: str, results: dict[int, dict[str, Any]]) -> list[int]:
        """Record finished items. An item already recorded keeps its first result and is counted once.
        Returns the items this call recorded first (what a worker counts in its metrics)."""

    @abstractmethod
    def item_results(self, job: str, indices: list[int]) -> dict[int, dict[str, Any]]:
        """Results recorded so far for these items."""

    @abstractmethod
    def forget_items(self, job: str, indices: list[int]) -> None:
        """Drop these items' records (and attempts), keeping them counted in the progress: their shard's
        manifest holds them now, and nothing reads a finished shard's records again. What keeps the
        coordinator's memory bounded by the shards in flight, not by the job."""

    @abstractmethod
    def begin_attempt(self, job: str, indices: list[int], ended: list[int] | None = None) -> None:
        """Note that these items are about to be processed (for poison-item quarantine); and, in the same
        round trip, that ``ended`` were processed without their worker dying (their results wait to be
        recorded with their shard's pack): they are no longer suspects, so a later death elsewhere cannot
        quarantine them."""

    @abstractmethod
    def attempts(self, job: str, indices: list[int]) -> dict[int, int]:
        """How many times each item was begun and not ended (items never begun are absent)."""

    def item_states(self, job: str, indices: list[int]) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
        """``item_results`` and ``attempts`` of these items, in one round trip where the backend allows (what a
        shard asks when it opens)."""
        return self.item_results(job, indices), self.attempts(job, indices)

    @abstractmethod
    def mark_shard_done(self, job: str, shard: int, ok: int, failed: int) -> int:
        """Mark a shard finished with its items' counts (idempotent); returns how many shards are finished."""

    @abstractmethod
    def shard_counts(self, job: str) -> dict[int, tuple[int, int]]:
        """(ok, failed) of every finished shard: what a running job's results pages filter by."""

    @abstractmethod
    def progress(self, job: str) -> LiveProgress | None:
        """Live progress, or None if the coordinator knows nothing of the job."""

    # --- outstanding work, so that none is lost (see shared.work) ---------------------------

    @abstractmethod
    def put_work(self, job: str, task_id: str, entry: dict[str, Any]) -> None:
        """Set one outstanding task of a job (a JSON-able entry: what to send, its state)."""

    @abstractmethod
    def drop_work(self, job: str, task_id: str) -> None:
        """The task has done its part: it is no longer outstanding."""

    @abstractmethod
    def work(self, job: str) -> dict[str, dict[str, Any]]:
        """The job's outstanding tasks, by task id."""

    @abstractmethod
    def work_entry(self, job: str, task_id: str) -> dict[str, Any] | None:
        """One outstanding task of the job, or None (what a task asks, in time independent of the job's
        size: a big job has thousands of shards outstanding)."""

    def take_work(
        self, job: str, task_id: str, lease: str, owner: str, ttl_s: float, changes: dict[str, Any]
    ) -> TakenWork:
        """A worker takes a task: the task's lease for ``owner`` (unless a live worker holds it) and, while the
        task is outstanding, ``changes`` made to its work entry; in one round trip where the backend allows
        (every task asks it first, on the thread that runs the task)."""
        if not self.acquire_lease(lease, owner, ttl_s):
            return TakenWork(held_elsewhere=True, entry=None)
        found = self.work_entry(job, task_id)
        if found is None:
            self.release_lease(lease, owner)
            return TakenWork(held_elsewhere=False, entry=None)
        entry = {**found, **changes}
        self.put_work(job, task_id, entry)
        return TakenWork(held_elsewhere=False, entry=entry)

    @abstractmethod
    def jobs_with_work(self) -> list[str]:
        """Every job that has outstanding tasks."""

    # --- leases: held by a running task, renewed by its heartbeat -----------------------------

    @abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take the lease if it is free or expired (or already ``owner``'s); True if ``owner`` holds it."""

    @abstractmethod
    def renew_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        """Extend the lease if ``owner`` still holds it; False if it was lost (expired and taken)."""

    @abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up, if ``owner`` holds it."""

    @abstractmethod
    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease now (None when free or expired)."""

    @abstractmethod
    def epoch(self) -> str | None:
        """A marker set once by the reconciler: None means this coordinator's state was lost (or is new)."""

    @abstractmethod
    def set_epoch(self, value: str) -> None: ...

    @abstractmethod
    def claim(self, name: str, ttl_s: int = 7 * 86400) -> bool:
        """True for the first caller only (SET NX)."""

    @abstractmethod
    def remember(self, name: str, value: str, ttl_s: int = 86400) -> str | None:
        """Store value under name unless present; returns the existing value, or None if stored."""
