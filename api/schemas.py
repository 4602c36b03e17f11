"""Response bodies, documented in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.jobs import JobRecord, JobStatus, Progress, now
from shared.results import ItemStatus
from shared.strict import RequestModel


class FieldError(BaseModel):
    field: str = Field(..., description="Dotted path of the field, e.g. model.job or input")
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(..., examples=["validation_error", "unauthorized", "not_found", "conflict", "too_large"])
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """Every error the API returns."""

    error: ErrorDetail


_MEANINGS = {
    400: "The request is malformed",
    401: "Missing or unknown API key",
    403: "Signature invalid or expired",
    404: "No such job or upload for this tenant",
    409: "The job's state does not allow this",
    413: "Over a size limit",
    422: "A field is invalid: the error names it",
    503: "The broker, coordinator or store is unavailable (Retry-After says when to retry)",
}


def errors(*statuses: int, also: dict[int | str, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses, each with the error body (and ``also``, other responses)."""
    out: dict[int | str, dict[str, Any]] = dict(also or {})
    out.update({status: {"model": ErrorBody, "description": _MEANINGS[status]} for status in statuses})
    return out


class JobView(BaseModel):
    id: str
    kind: str
    name: str | None
    status: JobStatus
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    items_per_second: float | None = Field(None, description="Items finished per second since the job started")
    eta_seconds: float | None = Field(None, description="Estimated seconds to completion while running")
    error: str | None = None
    spec: dict[str, Any]

    @classmethod
    def of(cls, record: JobRecord) -> JobView:
        rate = eta = None
        finished = record.progress.done + record.progress.failed
        if record.started_at is not None and finished:
            elapsed = ((record.finished_at or now()) - record.started_at).total_seconds()
            rate = round(finished / elapsed, 3) if elapsed > 0 else None
            if rate and record.progress.total is not None and record.finished_at is None:
                eta = round(max(record.progress.total - finished, 0) / rate, 1)
        return cls(
            id=record.id,
            kind=record.kind,
            name=record.name,
            status=record.status,
            progress=record.progress,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            items_per_second=rate,
            eta_seconds=eta,
            error=record.error,
            spec=record.spec,
        )


class JobPage(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page")


class ResultItem(BaseModel):
    index: int = Field(..., description="The item's place in the job's input, from 0: its identity and its order")
    name: str = Field(..., description="The member's name in the archive (or the object's key under the prefix)")
    status: ItemStatus = Field(
        ..., description="ok | failed | pending (a running job's item whose shard has not finished yet)"
    )
    outputs: dict[str, str] = Field(
        default_factory=dict,
        description="Output name -> URL of its bytes (presigned; for a packed output, the API's signed range route)",
    )
    packed: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Packed outputs only: output name -> PACK#OFFSET+SIZE:MEMBER, where its bytes lie in the pack that "
            "`packs` links (a tar whose members are INDEX.NAME.EXT)"
        ),
    )
    error: str | None = Field(None, description="Why a failed item failed")
    data: dict[str, Any] = Field(default_factory=dict, description="Per-item metadata, e.g. top-k predictions")


class Results(BaseModel):
    job: str
    status: JobStatus = Field(..., description="The job's status")
    final: bool = Field(
        ...,
        description=(
            "True once the job's results are complete: no item is pending, and the summary, report and manifest "
            "are linked. A running (or just canceled) job's page is a snapshot: items of finished shards are final, "
            "the others pending"
        ),
    )
    planned: bool = Field(
        ..., description="False while the job's input is still being planned: `total` grows as planning goes on"
    )
    filter: ItemStatus | None = Field(None, description="The status filter of this page (`status` query), if any")
    label: str | None = Field(None, description="The class filter of this page (`class` query), if any")
    sort: str | None = Field(None, description="The order of this page (`sort` query); null: index order")
    total: int = Field(
        ...,
        description=(
            "Items that match the filter (every item planned so far without one): pages run from offset 0 to total"
        ),
    )
    offset: int
    limit: int
    next_offset: int | None = Field(None, description="The offset of the next page, or null on the last one")
    items: list[ResultItem] = Field(..., description="In index order (the order of the job's input), never repeated")
    packs: dict[str, str] = Field(
        default_factory=dict,
        description="Packed outputs: each pack this page's items use -> presigned URL of the whole tar",
    )
    report: str | None = Field(None, description="Presigned URL of the HTML report (once final)")
    manifest: str | None = Field(None, description="Presigned URL of manifest.json, every item (once final)")
    summary: dict[str, Any] | None = Field(None, description="Counts, timing and the kind's figures (once final)")
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Job-level outputs (a trained model, its config, metrics, curves, maps) -> presigned URL",
    )
    error: str | None = None


class UploadRequest(RequestModel):
    filename: str = Field(..., min_length=1, max_length=255, examples=["photos.tar"])
    size: int | None = Field(None, ge=0, description="Bytes to be uploaded, checked against the limit")


class Upload(BaseModel):
    id: str
    uri: str = Field(..., description="Use as a job's input")
    put_url: str = Field(..., description="PUT the archive's bytes here (no API key needed) before it expires")
    expires_in: int
