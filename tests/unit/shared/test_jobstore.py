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


def test_pages_of_filtered_jobs_read_in_batches_list_each_match_once_in_order(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from shared.jobs import JobStatus
    from shared.jobstore import LIVE

    jobs = JobStore(LocalStorage(tmp_path / "store", secret=b"s"), SqliteCoordinator(tmp_path / "c.db"))
    made = [jobs.create("t", "saliency" if n % 3 == 0 else "deepdream", {}, None).id for n in range(11)]
    for job_id in made[::2]:
        jobs.transition("t", job_id, JobStatus.canceled, LIVE)
    with ThreadPoolExecutor(4) as pool:
        for kind, status in (
            ("saliency", None),
            (None, JobStatus.canceled),
            ("deepdream", JobStatus.queued),
            (None, None),
        ):
            for newest in (False, True):
                everything, _ = jobs.list("t", limit=1000, newest_first=newest)  # one page, read one by one
                assert len(everything) == 11
                wanted = [
                    r.id
                    for r in everything
                    if (kind is None or r.kind == kind) and (status is None or r.status == status)
                ]
                assert wanted
                seen, cursor = [], ""
                while True:
                    page, cursor = jobs.list("t", kind=kind, status=status, after=cursor or "", limit=2,
                                             newest_first=newest, reader=pool.map)  # fmt: skip
                    seen += [record.id for record in page]
                    if cursor is None:
                        break
                assert seen == wanted, (kind, status, newest)
