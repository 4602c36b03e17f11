"""Job records: durable JSON in the object store, with live status and progress from the coordinator."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from shared import keys
from shared.coordination import Coordinator
from shared.errors import NotFound, Retryable
from shared.job_index import OPEN, JobIndex, kind_facet, status_facet
from shared.jobs import TERMINAL, JobRecord, JobStatus, Progress, new_id, now
from shared.storage import Storage


def new_job_id() -> str:
    return new_id("j_")


LIVE = frozenset({JobStatus.queued.value, JobStatus.running.value})


class JobStore:
    def __init__(self, storage: Storage, coordinator: Coordinator) -> None:
        self.storage = storage
        self.coordinator = coordinator
        self.index = JobIndex(storage)
        self._writers = ThreadPoolExecutor(8, thread_name_prefix="fovea-jobstore")

    def create(
        self, tenant: str, kind: str, spec: dict[str, Any], name: str | None, job_id: str | None = None
    ) -> JobRecord:
        """Write a new queued job (durable record first, then its live status)."""
        record = JobRecord(id=job_id or new_job_id(), tenant=tenant, kind=kind, name=name, spec=spec, created_at=now())
        empty = [keys.newest_entry(tenant, record.id), *self.index.entries_of_new_job(tenant, record.id, kind)]
        writes: list[Callable[[], None]] = [
            lambda: self.save(record),
            lambda: self.storage.put_json(keys.live_job(record.id), {"tenant": tenant}),
            *(lambda key=key: self.storage.put_bytes(key, b"") for key in empty),
        ]
        if self.storage.calls_wait_on_network:  # five PUTs in the time of one: submission latency
            for future in [self._writers.submit(write) for write in writes]:
                future.result()
        else:
            for write in writes:
                write()
        self.coordinator.set_status(record.id, JobStatus.queued.value)
        return record

    def delete(self, tenant: str, job_id: str, kind: str) -> None:
        """Remove a job that was never queued (its submission failed)."""
        self.index.forget(tenant, job_id, kind)
        self.storage.delete(keys.job_record(tenant, job_id))
        self.storage.delete(keys.newest_entry(tenant, job_id))
        self.storage.delete(keys.live_job(job_id))

    def retire(self, job_id: str) -> None:
        """The job has ended and nothing more will run for it: drop it from the live index."""
        self.storage.delete(keys.live_job(job_id))

    def live(self) -> list[tuple[str, str]]:
        """(tenant, job id) of every job not retired yet, oldest first."""
        out = []
        for info in self.storage.list(keys.LIVE):
            job_id = info.key.removeprefix(keys.LIVE).removesuffix(".json")
            try:
                out.append((str(self.storage.get_json(info.key)["tenant"]), job_id))
            except NotFound:
                continue
        return out

    def save(self, record: JobRecord) -> None:
        self.storage.put_bytes(
            keys.job_record(record.tenant, record.id), record.model_dump_json().encode(), "application/json"
        )

    def load(self, tenant: str, job_id: str) -> JobRecord:
        """The stored record, as last written (raises NotFound, also for another tenant's job)."""
        return JobRecord.model_validate_json(self.storage.get_bytes(keys.job_record(tenant, job_id)))

    def get(self, tenant: str, job_id: str) -> JobRecord:
        """The record with live status and progress; falls back to the stored record if the coordinator is down."""
        record = self.load(tenant, job_id)
        if record.status in TERMINAL:
            return record
        try:
            status = self.coordinator.get_status(job_id)
            live = self.coordinator.progress(job_id)
        except Retryable:
            return self._with_snapshot(record)
        if status is not None and JobStatus(status) not in TERMINAL:
            # An ending shows once the record holds it with its reason: the status changes first, and a
            # reader between the two writes would see a job failed for no reason it could give.
            record.status = JobStatus(status)
        if live is not None:
            record.progress = Progress(total=live.total, done=live.done, failed=live.failed)
            record.shards = live.shards
        else:
            record = self._with_snapshot(record)
        return record

    def save_progress(self, tenant: str, job_id: str, progress: Progress) -> None:
        """Keep a durable copy of live progress (never rewrites the record: no lost update with a cancel)."""
        self.storage.put_bytes(keys.progress_snapshot(tenant, job_id), progress.model_dump_json().encode())

    def _with_snapshot(self, record: JobRecord) -> JobRecord:
        """The record with its last durable progress, so progress never goes backwards in an outage."""
        try:
            snapshot = Progress.model_validate_json(
                self.storage.get_bytes(keys.progress_snapshot(record.tenant, record.id))
            )
        except (NotFound, Retryable):
            return record
        if snapshot.done + snapshot.failed > record.progress.done + record.progress.failed:
            record.progress = snapshot
        return record

    def transition(
        self, tenant: str, job_id: str, status: JobStatus, only_from: frozenset[str], **fields: object
    ) -> JobRecord | None:
        """Move a job to ``status`` if its live status is in ``only_from``; returns the new record or None."""
        if not self.coordinator.set_status(job_id, status.value, only_from):
            return None
        record = self.get(tenant, job_id)
        if status == JobStatus.running and record.started_at is None:
            record.started_at = now()
        return self._record_status(record, status, **fields)

    def record_ending(self, record: JobRecord, status: JobStatus) -> JobRecord:
        """Write the ending the coordinator holds for a job whose record never got it (the process that
        ended the job stopped between the two writes); a failure's own reason is lost with it."""
        record = self._with_snapshot(record)
        reason = "the job failed; its reason was lost (the process that ended it stopped before recording it)"
        return self._record_status(record, status, **({"error": reason} if status == JobStatus.failed else {}))

    def _record_status(self, record: JobRecord, status: JobStatus, **fields: object) -> JobRecord:
        record.status = status
        if status in TERMINAL:
            record.finished_at = now()
        for name, value in fields.items():
            setattr(record, name, value)
        self.save(record)
        if status in TERMINAL:
            self.index.ended(record.tenant, record.id, status)
        if status in (JobStatus.succeeded, JobStatus.failed):
            self.retire(record.id)  # a canceled job is retired once its remaining work has wound down
        return record

    def list(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        kind: str | None = None,
        after: str = "",
        limit: int = 50,
        newest_first: bool = False,
        reader: Callable[[Callable[[str], JobRecord | None], list[str]], Iterable[JobRecord | None]] = map,
    ) -> tuple[list[JobRecord], str | None]:
        """One page of a tenant's jobs, oldest or newest first; returns (jobs, next cursor). A filtered list
        reads only the jobs of the filter's facet index. Records are read ``limit`` at a time through
        ``reader`` (an executor's ``map`` reads them at once)."""
        facets = ([status_facet(status)] if status is not None else []) + ([kind_facet(kind)] if kind else [])
        ids: Iterator[str]
        if facets and self.index.ready(tenant, lambda: self._stored_records(tenant)):
            ids = self.index.ids(tenant, facets, newest_first, after)
        elif newest_first:
            prefix = keys.newest_prefix(tenant)
            start_after = keys.newest_entry(tenant, after) if after else ""
            ids = (info.key[len(prefix) :].split("-", 1)[1] for info in self.storage.list(prefix, start_after))
        else:
            prefix = keys.records_prefix(tenant)
            start_after = keys.job_record(tenant, after) if after else ""
            ids = (info.key[len(prefix) :].removesuffix(".json") for info in self.storage.list(prefix, start_after))
        found: list[JobRecord] = []
        while batch := list(islice(ids, limit)):
            for job_id, record in zip(batch, reader(lambda job_id: self._found(tenant, job_id), batch), strict=True):
                if record is None:
                    continue
                if OPEN in facets and record.status in TERMINAL:
                    self.index.repair(record)
                if (status is None or record.status == status) and (kind is None or record.kind == kind):
                    found.append(record)
                    if len(found) >= limit:
                        return found, job_id
        return found, None

    def build_index(self, tenant: str) -> None:
        """Enter the tenant's jobs from before the facet index now (a filtered list does it in the background)."""
        self.index.build(tenant, self._stored_records(tenant))

    def _stored_records(self, tenant: str) -> Iterator[JobRecord]:
        prefix = keys.records_prefix(tenant)
        for info in self.storage.list(prefix):
            with contextlib.suppress(NotFound):
                yield self.load(tenant, info.key[len(prefix) :].removesuffix(".json"))

    def _found(self, tenant: str, job_id: str) -> JobRecord | None:
        try:
            return self.get(tenant, job_id)
        except NotFound:
            return None
