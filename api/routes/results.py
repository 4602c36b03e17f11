"""/v1/jobs/{id}/results: a job's items a page at a time, finished or running, filtered by status or not;
and the route that serves one packed output through the signed URL a page gave.

A page reads the job's shard index and the manifests of the shards it overlaps (``shared.results``), so
its cost grows with the page, not with the job. Items come in index order (the order of the job's
input), and an item's index never changes: offsets are stable while a job runs, and a page never
repeats or skips an item (with a status filter, an item can move from ``pending`` to ``ok`` or
``failed`` between two pages of a running job, as its shard finishes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import State, Tenant
from api.errors import ApiError
from api.links import PACKED_METHOD, PACKED_ROUTE, JobLinks
from api.schemas import ResultItem, Results, errors
from shared import keys, signing
from shared.errors import NotFound
from shared.jobs import TERMINAL
from shared.kinds import Shape, kind_of
from shared.packs import PackedOutput, parse_ref, read_packed
from shared.result_views import FIELD_PATTERN, ViewQuery, build_view, in_memory, read_view, view_page
from shared.results import ItemStatus, ShardIndex, page, read_ahead, read_index, read_plan

router = APIRouter(prefix="/v1", tags=["jobs"])

_ITEM_FIELDS = {"index", "name", "status", "outputs", "error"}
MAX_PAGE = 10_000


@router.get(
    "/jobs/{job_id}/results",
    response_model=Results,
    summary="A page of a job's results, with URLs (also while the job runs)",
    responses=errors(401, 404, 409, 422, 503),
)
def results(
    job_id: str,
    request: Request,
    state: State,
    tenant: Tenant,
    offset: Annotated[int, Query(ge=0, description="Skip this many (matching) items")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many items")] = 100,
    status: Annotated[
        ItemStatus | None, Query(description="Only items with this status (ok, failed or pending)")
    ] = None,
    label: Annotated[
        str | None,
        Query(
            alias="class",
            max_length=200,
            description="Only items whose predicted (top-1) or explained class has this index or name "
            "(an ended job only)",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            pattern=FIELD_PATTERN,
            description="Order by this numeric field of the items' records, a dotted path "
            "(`quality.deletion_auc`, `predictions.0.probability`, `reconstruction_error`, `log_prob`); "
            "`-` in front for descending. Items without it come last, ties in index order. An ended job "
            "only: its first sorted (or class-filtered) page reads the whole job once and stores the "
            "order, later pages read only their own part of it",
        ),
    ] = None,
) -> Results:
    """Items ``offset`` to ``offset + limit`` (of those with ``status``, if given) in index order, with
    output URLs. The order is stable: an item's index is its place in the input and never changes, so
    an offset names the same items on every call (with a filter, while the job runs, an item leaves the
    ``pending`` pages when its shard finishes). ``next_offset`` is the next page's offset, null on the
    last. A running job's page holds the items planned so far: those of finished shards final (ok or
    failed), the others ``pending``; ``final`` turns true once every item is final, and the summary,
    report and whole manifest are then linked. A page reads only the shards it overlaps: it costs the
    same at any offset."""
    # The record (which says the job is the caller's: another tenant's is a 404) and the shard index are
    # read at once; the index is under the tenant's own prefix, so reading it first shows nothing.
    found = state.readers.submit(_known, state, tenant, job_id, status, False)
    record = state.jobs.get(tenant, job_id)
    links = JobLinks(request, state, tenant, job_id)
    url = links.file

    index, summary = found.result()
    if index is not None and not index.final and record.status in TERMINAL:  # ended since its plan was kept?
        index, summary = _known(state, tenant, job_id, status, True)
    query = ViewQuery(status, label, sort)
    if not query.plain and (record.status not in TERMINAL or (index is not None and not index.final)):
        raise ApiError(409, "conflict", "sorting and class filters need the job to have ended; page it in index order")
    viewed = _viewed(state, tenant, job_id, index, query, offset, limit) if index is not None else None
    if viewed is not None:
        entries, total = viewed
        planned, final = True, True
    elif index is not None:
        entries = page(state.storage, tenant, job_id, index, offset, limit, status, state.readers.map)
        total, planned, final = index.count(status), index.planned, index.final
    else:
        entries, total, planned, final = _unindexed(
            state, tenant, job_id, record.status in TERMINAL, offset, limit, query
        )
    view = Results(
        job=job_id,
        status=record.status,
        final=final,
        planned=planned,
        filter=status,
        label=label,
        sort=sort,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=offset + len(entries) if entries and offset + len(entries) < total else None,
        items=[_item(entry, url) for entry in entries],
        packs=_packs(entries, links.whole),
        error=record.error,
        files=_files(state, tenant, job_id, url) if kind_of(record.kind).shape is Shape.TRAIN else {},
    )
    if final and summary is None and index is None:  # a job without a shard index (training, older jobs)
        summary = _read_summary(state, tenant, job_id)
    if final and summary is not None:
        view.summary = summary
        view.files |= _summary_files(summary, url)
        view.report = links.whole(keys.relative_to_job(tenant, job_id, keys.report(tenant, job_id)))
        view.manifest = links.whole(keys.relative_to_job(tenant, job_id, keys.manifest(tenant, job_id)))
    return view


def _known(
    state: State, tenant: str, job_id: str, status: ItemStatus | None, fresh: bool
) -> tuple[ShardIndex | None, dict[str, Any] | None]:
    """The job's shard index (the finaliser's once the job has one; before that the plan as it stands, with
    the counts of the shards finished so far when a page filters by status) and, once final, its summary.
    What can no longer change is kept; ``fresh`` reads past what was kept."""
    index = None if fresh else state.kept.get(("index", tenant, job_id))
    if index is None:
        index = read_index(state.storage, tenant, job_id) or read_plan(state.storage, tenant, job_id)
        if index is None:
            return None, None
        if index.planned:  # its shards are fixed (no counts attached yet: they are read fresh below)
            state.kept.keep(("index", tenant, job_id), index)
    if not index.final:
        counts = state.coordinator.shard_counts(job_id) if status is not None else {}
        return dataclasses.replace(index, counts=counts), None
    summary = state.kept.get(("summary", tenant, job_id))
    if summary is None:
        summary = _read_summary(state, tenant, job_id)
        if summary is not None:
            state.kept.keep(("summary", tenant, job_id), summary)
    return index, summary


def _viewed(
    state: State, tenant: str, job_id: str, index: ShardIndex, query: ViewQuery, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int] | None:
    """A page of the ended job's items filtered by class or sorted, or by a status that keeps few of them
    (``shared.result_views``), read a chunk or two a page; None where the shard index serves it. A sort or
    class view is built on its first use, then kept (its description only). A status filter's view is
    the finaliser's (its failed items), never built on request: that would read the whole job while the
    client waits, where the shard index answers in the time a running job's filtered page takes."""
    if not query.wants_view(index):
        return None
    kept_key = ("view", tenant, job_id, query.name)
    described = state.kept.get(kept_key)
    if described is None:
        described = read_view(state.storage, tenant, job_id, query)
        if described is None and query.plain:
            described = {}  # none from the finaliser: an ended job's views no longer change, so that is kept too
        elif described is None:
            with state.building(kept_key):  # one build per view in this process; others wait for it
                described = read_view(state.storage, tenant, job_id, query) or build_view(
                    state.storage, tenant, job_id, index, query, read_ahead(state.readers, 8)
                )
        state.kept.keep(kept_key, described)
    if not described:
        return None
    entries = view_page(state.storage, tenant, job_id, query, described, offset, limit, state.readers.map)
    return entries, int(described["total"])


def _read_summary(state: State, tenant: str, job_id: str) -> dict[str, Any] | None:
    try:
        return dict(state.storage.get_json(keys.summary(tenant, job_id)))
    except NotFound:
        return None


def _unindexed(
    state: State, tenant: str, job_id: str, ended: bool, offset: int, limit: int, query: ViewQuery
) -> tuple[list[dict[str, Any]], int, bool, bool]:
    """A job with no shard index: not planned yet, a training job, failed before its first shard, or
    planned by an older version (its whole manifest, read once it has ended). Items, total, planned, final."""
    if not ended:
        return [], 0, False, False
    try:
        manifest = state.storage.get_json(keys.manifest(tenant, job_id))
    except NotFound:
        return [], 0, True, True
    items = in_memory(manifest["items"], query)
    return items[offset : offset + limit], len(items), True, True


def _packs(entries: list[dict[str, Any]], url: Callable[[str], str]) -> dict[str, str]:
    """Each pack the page's items use -> a URL of the whole tar (to download it once, not item by item)."""
    found = {ref.pack for e in entries for path in e.get("outputs", {}).values() if (ref := parse_ref(path))}
    return {pack: url(pack) for pack in sorted(found)}


def _files(state: State, tenant: str, job_id: str, url: Callable[[str], str]) -> dict[str, str]:
    """A training job's files (its model, config, metrics, pictures) as they are written."""
    try:
        index = state.storage.get_json(keys.job_files_index(tenant, job_id))
    except NotFound:
        return {}
    return {name: url(path) for name, path in index.items()}


def _summary_files(summary: dict[str, Any], url: Callable[[str], str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for name in ("mean_map", "mean_map_png"):
        path = (summary.get("aggregate") or {}).get(name)
        if path:
            files[name] = url(path)
    for name, path in (summary.get("pictures") or {}).items():  # a contact sheet, a filter grid
        files[name] = url(path)
    for name, path in (summary.get("arrays") or {}).items():  # per-item arrays: row i is item i
        files[f"{name}.npy"] = url(path)
    return files


def _item(entry: dict[str, Any], url: Callable[[str], str]) -> ResultItem:
    data = {k: v for k, v in entry.items() if k not in _ITEM_FIELDS}
    outputs: dict[str, str] = entry.get("outputs", {})
    return ResultItem(
        index=entry["index"],
        name=entry["name"],
        status=entry["status"],
        outputs={name: url(path) for name, path in outputs.items()},
        packed={name: path for name, path in outputs.items() if parse_ref(path) is not None},
        error=entry.get("error"),
        data=data,
    )


@router.get(
    PACKED_ROUTE.removeprefix("/v1") + "/{key:path}",
    summary="Download one packed output through its signed URL",
    response_class=Response,
    responses=errors(
        403, 404, 422, also={200: {"content": {"application/octet-stream": {}}, "description": "The output"}}
    ),
)
def packed_output(
    key: str,
    expires: int,
    signature: str,
    state: State,
    offset: Annotated[int, Query(ge=0, description="Where the output's bytes start in the pack")],
    size: Annotated[int, Query(ge=0, le=2**31, description="How many bytes it has")],
    name: Annotated[str, Query(max_length=255, description="The member's name (INDEX.NAME.EXT): its media type")],
) -> Response:
    """The bytes of one output inside a pack (one range read of the store), for the URL a results page
    gave: signed for one pack of one job, and only ever made for the job's own tenant."""
    if not signing.verify(state.settings.secret(), PACKED_METHOD, key, expires, signature):
        raise ApiError(403, "forbidden", "signature invalid or expired")
    output = PackedOutput(key, offset, size, name)
    try:
        data = read_packed(state.storage, key, output)
    except NotFound as exc:
        raise ApiError(404, "not_found", "not found") from exc
    if len(data) != size:
        raise ApiError(404, "not_found", "the pack is shorter than this output's place in it")
    return Response(data, media_type=output.content_type)
