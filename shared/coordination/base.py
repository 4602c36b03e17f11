"""The coordinator interface. Every write is idempotent, so a redelivered task can repeat it safely."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


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
    def record_items(self, job: str, results: dict[int, dict[str, Any]]) -> None:
        """Record finished items. An item already recorded keeps its first result and is counted once."""

    @abstractmethod
    def item_results(self, job: str, indices: list[int]) -> dict[int, dict[str, Any]]:
        """Results recorded so far for these items."""

    @abstractmethod
    def begin_attempt(self, job: str, indices: list[int]) -> None:
        """Note that these items are about to be processed (for poison-item quarantine)."""

    @abstractmethod
    def attempts(self, job: str, indices: list[int]) -> dict[int, int]:
        """How many times each item was begun (items never begun are absent)."""

    @abstractmethod
    def count_delivery(self, job: str, shard: int) -> int:
        """Count one more delivery of a shard task; returns the count including this one."""

    @abstractmethod
    def mark_shard_done(self, job: str, shard: int) -> int:
        """Mark a shard finished (idempotent); returns how many shards are finished."""

    @abstractmethod
    def progress(self, job: str) -> LiveProgress | None:
        """Live progress, or None if the coordinator knows nothing of the job."""

    @abstractmethod
    def claim(self, name: str, ttl_s: int = 7 * 86400) -> bool:
        """True for the first caller only (SET NX)."""

    @abstractmethod
    def remember(self, name: str, value: str, ttl_s: int = 86400) -> str | None:
        """Store value under name unless present; returns the existing value, or None if stored."""
