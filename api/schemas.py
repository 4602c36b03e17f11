"""Response bodies, documented in the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.jobs import JobRecord, JobStatus, Progress, now
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
    index: int
    name: str
    status: str = Field(..., description="ok | failed")
    outputs: dict[str, str] = Field(default_factory=dict, description="output name -> presigned URL")
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="Per-item metadata, e.g. top-k predictions")


class Results(BaseModel):
    job: str
    status: JobStatus
    total: int
    offset: int
    limit: int
    items: list[ResultItem]
    report: str | None = Field(None, description="Presigned URL of the HTML report")
    manifest: str | None = Field(None, description="Presigned URL of manifest.json")
    summary: dict[str, Any] | None = None
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Job-level outputs (a trained model, its config, metrics, curves) -> presigned URL",
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
