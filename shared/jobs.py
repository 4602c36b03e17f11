"""The job record: the durable description of a job, kept as JSON in the object store."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.canceled})


class Progress(BaseModel):
    total: int | None = Field(None, description="Items in the job; null until planning is done")
    done: int = Field(0, description="Items finished successfully")
    failed: int = Field(0, description="Items finished with an error")


class JobRecord(BaseModel):
    id: str
    tenant: str
    kind: str
    name: str | None = None
    status: JobStatus = JobStatus.queued
    spec: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress = Field(default_factory=Progress)
    shards: int | None = None
    error: str | None = None


def now() -> datetime:
    return datetime.now(UTC)


_last_millisecond = [0]  # of the last id made in this process
_last_id_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """A time-ordered id: millisecond timestamp then randomness, so keys list in creation order. One process
    never gives two ids the same millisecond: an id made within the last one's takes the next (a burst of
    a thousand runs a second ahead of the clock), so a tenant's jobs submitted together list, newest
    first or oldest first, in the order they were made; ids from two processes in one millisecond list
    in either order."""
    with _last_id_lock:
        millisecond = max(int(time.time() * 1000), _last_millisecond[0] + 1)  # (also if the clock stepped back)
        _last_millisecond[0] = millisecond
    return f"{prefix}{millisecond:012x}{os.urandom(6).hex()}"
