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


_last_id = [0, 0]  # the millisecond and the random part of the last id made in this process
_last_id_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """A time-ordered id: millisecond timestamp then randomness, so keys list in creation order. Ids made
    in the same millisecond by one process follow each other (the random part of the last, plus one: a
    tenant's jobs submitted in a burst list in the order they were made); across processes, to the ms."""
    with _last_id_lock:
        millisecond = int(time.time() * 1000)
        if millisecond <= _last_id[0]:  # the same millisecond, or the clock stepped back
            millisecond, random_part = _last_id[0], _last_id[1] + 1
        else:
            random_part = int.from_bytes(os.urandom(6)) >> 1  # below 2**47: room to count up
        _last_id[:] = [millisecond, random_part]
    return f"{prefix}{millisecond:012x}{random_part:012x}"
