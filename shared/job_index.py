"""A tenant's jobs by facet (kind, ended status, still open), so that a filtered jobs list reads only the
jobs that match, not every record until a page is full (seconds for a filter few of 10k jobs match).

Each facet is a folder of empty objects, one per job, named to list newest first (the console's order);
oldest first, a filtered list reads the facet's names (names only) and walks them backwards. A job
enters ``kind-NAME`` and ``open`` when created, and on reaching an ended status leaves ``open`` for
``status-NAME``. ``open`` may hold a job that has since ended (a crash between the two writes, a
rebuild racing a transition): the reader checks each job's live status anyway, and repairs such an
entry when it meets one. Jobs from before the index are entered
once per tenant, on a thread started by the first filtered list, before a marker records that the index is
built; until then a filtered list scans the records as it did before the index (correct, but slow).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator

from shared import keys
from shared.errors import NotFound
from shared.jobs import TERMINAL, JobRecord, JobStatus
from shared.storage import Storage

OPEN = "open"
log = logging.getLogger(__name__)


def kind_facet(kind: str) -> str:
    return f"kind-{kind}"


def status_facet(status: JobStatus) -> str:
    return f"status-{status.value}" if status in TERMINAL else OPEN


class JobIndex:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._built: set[str] = set()  # tenants whose marker this process has seen (it is never removed)
        self._building: set[str] = set()
        self._lock = threading.Lock()

    def entries_of_new_job(self, tenant: str, job_id: str, kind: str) -> list[str]:
        """The empty objects a new job's creator writes (with its record, at once where the store is remote)."""
        return [keys.jobs_index_entry(tenant, facet, job_id) for facet in (kind_facet(kind), OPEN)]

    def ended(self, tenant: str, job_id: str, status: JobStatus) -> None:
        """Called after the record holding the ended status is saved."""
        self._enter(tenant, status_facet(status), job_id)
        self._leave(tenant, OPEN, job_id)

    def forget(self, tenant: str, job_id: str, kind: str) -> None:
        """A job that was never accepted: out of every facet it entered."""
        for facet in (kind_facet(kind), OPEN):
            self._leave(tenant, facet, job_id)

    def repair(self, record: JobRecord) -> None:
        """A job listed as open whose record has ended: move it where it belongs."""
        if record.status in TERMINAL:
            self.ended(record.tenant, record.id, record.status)

    def ids(self, tenant: str, facets: list[str], newest_first: bool, after: str = "") -> Iterator[str]:
        """The ids of the jobs in every one of ``facets``, in order, from just after the job ``after``: the
        facets' listings walked side by side, names only (no record is read for a job that misses one)."""
        if newest_first:
            start = keys.jobs_index_entry(tenant, facets[0], after).rpartition("/")[2] if after else ""
            names = _in_every([self._names(tenant, facet, start) for facet in facets])
        else:
            stop = keys.jobs_index_entry(tenant, facets[0], after).rpartition("/")[2] if after else None
            listings = [self._names(tenant, facet, "") for facet in facets]
            names = _oldest_first(list(listings[0] if len(listings) == 1 else _in_every(listings)), stop)
        for name in names:
            yield name.split("-", 1)[1]

    def _names(self, tenant: str, facet: str, start_after: str) -> Iterator[str]:
        prefix = keys.jobs_index_prefix(tenant, facet)
        for key in self.storage.keys(prefix, start_after=prefix + start_after if start_after else ""):
            yield key[len(prefix) :]

    def ready(self, tenant: str, records: Callable[[], Iterable[JobRecord]]) -> bool:
        """Whether the tenant's jobs are all in the index. If not, enter them on a thread of their own
        (``records`` are the tenant's stored records), once per process; until then, lists scan."""
        if tenant in self._built:
            return True
        if self.storage.size(keys.jobs_index_built(tenant)) is not None:
            self._built.add(tenant)
            return True
        with self._lock:
            if tenant not in self._building:
                self._building.add(tenant)
                threading.Thread(target=self._build, args=(tenant, records), daemon=True).start()
        return False

    def build(self, tenant: str, records: Iterable[JobRecord]) -> None:
        """Enter every one of ``records`` (the tenant's jobs from before the index), then mark it built."""
        for record in records:
            self._enter(tenant, kind_facet(record.kind), record.id)
            if record.status in TERMINAL:
                self.ended(tenant, record.id, record.status)
            else:
                self._enter(tenant, OPEN, record.id)
        self.storage.put_bytes(keys.jobs_index_built(tenant), b"")
        self._built.add(tenant)

    def _build(self, tenant: str, records: Callable[[], Iterable[JobRecord]]) -> None:
        try:
            self.build(tenant, records())
        except Exception:  # a store outage: the next filtered list tries again
            log.exception("could not index the jobs of tenant %s", tenant)
        finally:
            with self._lock:
                self._building.discard(tenant)

    def _enter(self, tenant: str, facet: str, job_id: str) -> None:
        self.storage.put_bytes(keys.jobs_index_entry(tenant, facet, job_id), b"")

    def _leave(self, tenant: str, facet: str, job_id: str) -> None:
        with contextlib.suppress(NotFound):
            self.storage.delete(keys.jobs_index_entry(tenant, facet, job_id))


def _oldest_first(newest: list[str], after: str | None) -> Iterator[str]:
    """Newest-first names walked backwards: oldest first, as the records list (by id: creation time, then
    the id's random part, so jobs of one millisecond keep their order), from just after the name ``after``."""
    end = len(newest)
    while end > 0:
        stamp = newest[end - 1][:12]
        start = end - 1
        while start > 0 and newest[start - 1][:12] == stamp:
            start -= 1
        for name in newest[start:end]:  # one millisecond's jobs: ascending already
            # Later than ``after``: created later (a smaller inverted time), or in its millisecond, a greater id.
            if after is None or name[:12] < after[:12] or (name[:12] == after[:12] and name > after):
                yield name
        end = start


def _in_every(listings: list[Iterator[str]]) -> Iterator[str]:
    """The names found in every one of several ascending listings, ascending."""
    heads = [next(listing, None) for listing in listings]
    while True:
        present = [head for head in heads if head is not None]
        if len(present) < len(heads):
            return
        highest = max(present)
        if all(head == highest for head in present):
            yield highest
            heads = [next(listing, None) for listing in listings]
            continue
        for n, listing in enumerate(listings):
            head = heads[n]
            while head is not None and head < highest:
                head = next(listing, None)
            heads[n] = head
