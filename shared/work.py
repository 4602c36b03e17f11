"""Outstanding work: every task a job needs in order to finish is recorded in the coordinator before it is
sent, marked running while a worker holds its lease, and dropped once it has done its part (the next task
is recorded first, so a live job always has work on record). The reconciler compares this record with
the leases and the broker to find work that nobody is doing, and re-sends it; exactly-once stays the
job's item records' business, so work sent twice is harmless.

Task ids: ``plan`` (planning's first step), ``plan:N`` (its step N), ``shard:N``, ``train:N`` (training
step N), ``finalize``. A task whose work is no longer
on record when a worker takes it has been done already (its successor is on record): it is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.coordination import Coordinator, TakenWork

Send = Callable[[str, list[Any]], None]


@dataclass
class WorkEntry:
    task: str
    """The task name to send (``shared.queueing``)."""
    args: list[Any]
    state: str = "queued"
    """queued (sent, waiting in the broker) or running (a worker took it and holds its lease)."""
    since: float = field(default_factory=time.time)
    deaths: int = 0
    """Times a worker took it and then vanished without finishing or handing it back."""
    strikes: int = 0
    """Times it was handed back still failing with a transient error while the store and the coordinator
    answered the worker's probe: not an outage but something wrong with this task (the watchdog's count)."""
    last_error: str = ""

    @classmethod
    def of(cls, data: dict[str, Any]) -> WorkEntry:
        return cls(
            str(data["task"]),
            list(data["args"]),
            str(data["state"]),
            float(data["since"]),
            int(data["deaths"]),
            int(data.get("strikes", 0)),  # entries written before the watchdog had none
            str(data.get("last_error", "")),
        )


def plan_task_id(step: int) -> str:
    return "plan" if step == 0 else f"plan:{step}"


def shard_task_id(shard: int) -> str:
    return f"shard:{shard}"


def train_task_id(step: int) -> str:
    return f"train:{step}"


def lease_name(job: str, task_id: str) -> str:
    return f"{job}:{task_id}"


def queue_work(
    coordinator: Coordinator,
    send: Send,
    job: str,
    task_id: str,
    task: str,
    args: list[Any],
    deaths: int = 0,
    strikes: int = 0,
    last_error: str = "",
) -> None:
    """Record the task as outstanding, then send it (recorded first: a crash in between leaves work on
    record that the reconciler will send, never a task nobody knows of). ``deaths``, ``strikes`` and
    ``last_error`` carry a resent task's history."""
    entry = WorkEntry(task, list(args), deaths=deaths, strikes=strikes, last_error=last_error)
    coordinator.put_work(job, task_id, asdict(entry))
    send(task, list(args))


def take_work(coordinator: Coordinator, job: str, task_id: str, owner: str, ttl_s: float) -> TakenWork:
    """A worker takes the task: its lease, and its work marked running (unless a live worker holds the lease,
    or the task is no longer outstanding), in one round trip."""
    running = {"state": "running", "since": time.time()}
    return coordinator.take_work(job, task_id, lease_name(job, task_id), owner, ttl_s, running)
