"""The job store: durable records in the store, live status and progress from the coordinator, and the
last durable progress while the coordinator is away (progress never goes backwards)."""

from __future__ import annotations

from pathlib import Path

from shared.coordination.sqlite_backend import SqliteCoordinator
from shared.errors import Retryable
from shared.jobs import Progress
from shared.jobstore import JobStore
from shared.storage.local import LocalStorage


class Unreachable(SqliteCoordinator):
    def get_status(self, job: str) -> str | None:
        raise Retryable("coordinator unavailable")


def test_progress_during_a_coordinator_outage_is_the_last_durable_one(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store", secret=b"s")
    jobs = JobStore(storage, SqliteCoordinator(tmp_path / "c.sqlite3"))
    record = jobs.create("alice", "saliency", {"kind": "saliency"}, None)
    jobs.save_progress("alice", record.id, Progress(total=500, done=256, failed=3))
    away = JobStore(storage, Unreachable(tmp_path / "c.sqlite3"))
    assert away.get("alice", record.id).progress == Progress(total=500, done=256, failed=3)
    assert [job_id for _, job_id in jobs.live()] == [record.id]
    jobs.retire(record.id)
    assert jobs.live() == []
