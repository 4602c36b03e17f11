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


class CountingStorage(LocalStorage):
    """Counts reads of job records, to see what a list had to read."""

    record_reads = 0

    def get_bytes(self, key: str) -> bytes:
        if "/records/" in key:
            self.record_reads += 1
        return super().get_bytes(key)


def test_a_filter_few_jobs_match_reads_only_those_jobs(tmp_path: Path) -> None:
    from shared.jobs import JobStatus
    from shared.jobstore import LIVE

    storage = CountingStorage(tmp_path / "store", secret=b"s")
    jobs = JobStore(storage, SqliteCoordinator(tmp_path / "c.db"))
    made = [jobs.create("t", "deepdream" if n in (7, 31) else "saliency", {}, None).id for n in range(40)]
    for job_id in made:
        jobs.transition("t", job_id, JobStatus.running, LIVE)
        jobs.transition("t", job_id, JobStatus.failed if job_id in made[20:23] else JobStatus.succeeded, LIVE)
    jobs.transition("t", jobs.create("t", "saliency", {}, None).id, JobStatus.running, LIVE)
    jobs.build_index("t")  # a filtered list would enter older jobs in the background and scan until then
    for status, kind, wanted in (
        (JobStatus.failed, None, made[22:19:-1]),
        (None, "deepdream", [made[31], made[7]]),
        (JobStatus.running, None, None),
        (JobStatus.queued, None, []),
        (JobStatus.succeeded, "deepdream", [made[31], made[7]]),
    ):
        storage.record_reads = 0
        page, cursor = jobs.list("t", status=status, kind=kind, newest_first=True)
        assert cursor is None
        if wanted is not None:
            assert [r.id for r in page] == wanted
        assert len(page) <= 3 and storage.record_reads <= {(JobStatus.succeeded, "deepdream"): 2}.get(
            (status, kind), 3
        ), (status, kind, storage.record_reads)


def test_jobs_from_before_the_index_and_open_entries_of_ended_jobs_are_listed_where_they_belong(
    tmp_path: Path,
) -> None:
    import shutil
    import time

    from shared import keys
    from shared.jobs import JobStatus
    from shared.jobstore import LIVE

    storage = LocalStorage(tmp_path / "store", secret=b"s")
    coordinator = SqliteCoordinator(tmp_path / "c.db")
    old = JobStore(storage, coordinator)
    made = [old.create("t", "saliency", {}, None).id for _ in range(5)]
    old.transition("t", made[1], JobStatus.canceled, LIVE)
    old.transition("t", made[3], JobStatus.running, LIVE)
    # As a store written before the facet index: no index folder at all.
    shutil.rmtree(storage.root / keys.tenant_prefix("t") / "index")
    jobs = JobStore(storage, coordinator)
    for _ in range(2):  # scanned while the index is built in the background, then from the index
        assert [r.id for r in jobs.list("t", status=JobStatus.canceled)[0]] == [made[1]]
        assert [r.id for r in jobs.list("t", status=JobStatus.queued)[0]] == [made[0], made[2], made[4]]
        assert [r.id for r in jobs.list("t", kind="saliency")[0]] == made
        deadline = time.monotonic() + 30
        while storage.size(keys.jobs_index_built("t")) is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert jobs.index.ready("t", list)

    # A crash between saving the ended record and moving its index entry: still listed under its status
    # once a list of open jobs has met it (and never as open).
    jobs.transition("t", made[3], JobStatus.succeeded, LIVE)
    storage.put_bytes(keys.jobs_index_entry("t", "open", made[3]), b"")
    storage.delete(keys.jobs_index_entry("t", "status-succeeded", made[3]))
    assert [r.id for r in jobs.list("t", status=JobStatus.running)[0]] == []
    assert [r.id for r in jobs.list("t", status=JobStatus.succeeded)[0]] == [made[3]]


def test_oldest_first_walks_newest_first_names_backwards_keeping_each_millisecond_in_id_order() -> None:
    from shared import keys
    from shared.job_index import _oldest_first

    # Ids as made: 12 hex digits of creation time, then randomness; three jobs in one millisecond.
    ids = ["j_000000000005aa", "j_000000000005bb", "j_000000000007aa"] + [
        f"j_000000000009{r}" for r in ("aa", "bb", "cc")
    ]
    newest = sorted(keys.jobs_index_entry("t", "open", i).rpartition("/")[2] for i in ids)
    names = [name.split("-", 1)[1] for name in _oldest_first(newest, None)]
    assert names == ids  # the records' order: by id
    for n, cursor in enumerate(ids):
        after = keys.jobs_index_entry("t", "open", cursor).rpartition("/")[2]
        assert [name.split("-", 1)[1] for name in _oldest_first(newest, after)] == ids[n + 1 :]


def test_an_ending_shows_only_once_its_record_holds_the_reason_and_an_unwritten_one_is_completed(
    tmp_path: Path,
) -> None:
    from shared.jobs import JobStatus
    from shared.jobstore import LIVE

    storage = LocalStorage(tmp_path / "store", secret=b"s")
    coordinator = SqliteCoordinator(tmp_path / "c.sqlite3")
    jobs = JobStore(storage, coordinator)
    record = jobs.create("alice", "saliency", {"kind": "saliency"}, None)
    jobs.transition("alice", record.id, JobStatus.running, LIVE)
    # The status changes first; a reader between that and the record's write sees the job still running,
    # never "failed" with no error.
    assert coordinator.set_status(record.id, JobStatus.failed.value, LIVE)
    seen = jobs.get("alice", record.id)
    assert seen.status == JobStatus.running and seen.error is None
    # The process that ended it stopped there: the ending is completed from the coordinator, with a reason.
    ended = jobs.record_ending(jobs.load("alice", record.id), JobStatus.failed)
    seen = jobs.get("alice", record.id)
    assert seen.status == JobStatus.failed == ended.status and seen.error and "lost" in seen.error
    assert seen.finished_at is not None
    assert jobs.live() == []
    # A whole transition shows at once, its reason with it.
    other = jobs.create("alice", "saliency", {"kind": "saliency"}, None)
    jobs.transition("alice", other.id, JobStatus.failed, LIVE, error="not an archive")
    assert jobs.get("alice", other.id).error == "not an archive"
