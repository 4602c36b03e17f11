"""/v1/jobs: submit, read, list, cancel (results: ``api.routes.results``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from api import metrics
from api.deps import State, Tenant
from api.errors import ApiError
from api.schemas import JobPage, JobView, errors
from shared import keys
from shared.errors import NotFound, Retryable
from shared.jobs import TERMINAL, JobStatus
from shared.jobstore import LIVE, new_job_id
from shared.kinds import KINDS, JobSpec, producer_of
from shared.queueing import PLAN_TASK
from shared.settings import IDENTIFIER
from shared.uris import parse_s3_uri, reaches_service
from shared.work import queue_work

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

KindName = StrEnum("KindName", {name: name for name in KINDS})  # type: ignore[misc]
"""The registered kinds, for the list filter's documentation and validation."""


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}])


def _check_input(state: State, tenant: str, spec: JobSpec) -> None:
    """The input exists (an upload), and no s3:// URI of the spec reaches the service's own area."""
    uri = spec.input_uri()  # feature visualisation has no input: its items are its targets
    if uri is not None and uri.startswith("upload://"):
        found = next(iter(state.storage.list(keys.uploads_prefix(tenant, uri.removeprefix("upload://")))), None)
        if found is None:
            raise _invalid("input", "upload not found or its bytes were never PUT")
    root = state.settings.storage_root()
    for field, value in spec.object_uris():
        if root is None:
            raise _invalid(field, "s3:// URIs need S3 storage on this server; use upload://")
        try:
            location = parse_s3_uri(value)
        except ValueError as exc:  # the spec's own validators check their fields; this is the safety net
            raise _invalid(field, str(exc)) from None
        if reaches_service(location, root):
            raise _invalid(field, "may not point into the service's own storage area (use upload://)")


def _check_trained_models(state: State, tenant: str, spec: JobSpec) -> None:
    """Every ``{"job": ID}`` the spec names is a training job of this tenant that trains the right model."""
    for use in spec.trained_models():
        wanted = " or ".join(producer_of(use.model_type)) or "a training"
        try:
            kind = state.jobs.load(tenant, use.job).kind
        except NotFound:
            raise _invalid(use.field, f"no job {use.job} (it must be a {wanted} job of yours)") from None
        produces = KINDS[kind].produces if kind in KINDS else None
        if produces != use.model_type:
            made = f"trains a {produces}" if produces else "trains no model"
            raise _invalid(
                use.field,
                f"job {use.job} is a {kind} job, which {made}; this needs a {use.model_type} (from a {wanted} job)",
            )


@router.post(
    "",
    status_code=201,
    response_model=JobView,
    summary="Submit a job",
    responses=errors(
        400,
        401,
        409,
        413,
        422,
        503,
        also={200: {"model": JobView, "description": "A retry with the same Idempotency-Key"}},
    ),
)
def submit(
    spec: JobSpec,
    state: State,
    tenant: Tenant,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobView:
    """Validate and queue a job. With an ``Idempotency-Key`` header, a retried submission returns the
    job created the first time (status 200 and ``Idempotent-Replayed: true``); the same key with a
    different body is a 409."""
    _check_input(state, tenant, spec)
    _check_trained_models(state, tenant, spec)
    body = spec.model_dump(mode="json")
    job_id = new_job_id()
    if idempotency_key:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        existing = state.coordinator.remember(f"idem:{tenant}:{idempotency_key}", f"{digest}:{job_id}")
        if existing is not None:
            old_digest, _, old_id = existing.partition(":")
            if old_digest != digest:
                raise ApiError(409, "conflict", "Idempotency-Key was used with a different request body")
            try:
                record = state.jobs.get(tenant, old_id)
                response.status_code = 200
                response.headers["Idempotent-Replayed"] = "true"
                return JobView.of(record)
            except NotFound:
                job_id = old_id  # the first attempt failed before queueing: create it now
    try:
        record = state.jobs.create(tenant, spec.kind, body, spec.name, job_id=job_id)
        queue_work(state.coordinator, state.queue.send, job_id, "plan", PLAN_TASK, [tenant, job_id])
    except Retryable:
        with contextlib.suppress(Exception):
            state.jobs.delete(tenant, job_id, spec.kind)  # not accepted: leave no queued record or work behind
        with contextlib.suppress(Exception):
            state.coordinator.drop_work(job_id, "plan")
        raise
    for upload_id in spec.upload_ids():  # used now: kept, no longer swept
        state.storage.delete(keys.unused_upload(upload_id))
    metrics.JOBS_SUBMITTED.labels(kind=spec.kind).inc()
    return JobView.of(record)


@router.get("", response_model=JobPage, summary="List jobs", responses=errors(401, 422, 503))
def list_jobs(
    state: State,
    tenant: Tenant,
    status: JobStatus | None = None,
    kind: KindName | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page", pattern=IDENTIFIER.pattern)
    ] = None,
    order: Annotated[Literal["oldest", "newest"], Query(description="oldest first, or newest first")] = "oldest",
) -> JobPage:
    """The caller's jobs, oldest (or newest) first, filtered by status and kind."""
    records, next_cursor = state.jobs.list(
        tenant,
        status=status,
        kind=kind.value if kind else None,
        after=cursor or "",
        limit=limit,
        newest_first=order == "newest",
        reader=state.many_reads,
    )
    return JobPage(items=[JobView.of(r) for r in records], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobView, summary="Read a job", responses=errors(401, 404, 422, 503))
def get_job(job_id: str, state: State, tenant: Tenant) -> JobView:
    return JobView.of(state.jobs.get(tenant, job_id))


@router.post(
    "/{job_id}/cancel", response_model=JobView, summary="Cancel a job", responses=errors(401, 404, 409, 422, 503)
)
def cancel(job_id: str, state: State, tenant: Tenant) -> JobView:
    """Stop a queued or running job within seconds; finished items keep their outputs. 409 if it has ended."""
    record = state.jobs.get(tenant, job_id)
    if record.status in TERMINAL:
        raise ApiError(409, "conflict", f"job already {record.status.value}")
    updated = state.jobs.transition(tenant, job_id, JobStatus.canceled, LIVE)
    if updated is None:
        ended = state.jobs.coordinator.get_status(job_id) or "ended"  # its record may not say so yet
        if ended == JobStatus.canceled.value:  # a cancel whose record was not written (the store was away)
            return JobView.of(state.jobs.record_ending(state.jobs.load(tenant, job_id), JobStatus.canceled))
        raise ApiError(409, "conflict", f"job already {ended}")
    return JobView.of(updated)
