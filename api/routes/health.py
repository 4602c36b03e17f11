"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from api.deps import State
from shared.errors import Retryable

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(BaseModel):
    status: str = Field(..., examples=["ok", "unavailable"])
    checks: dict[str, str] = Field(..., description="broker, coordinator, store: ok or unavailable")


@router.get(
    "/readyz",
    summary="Broker, coordinator and store are reachable",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "One of them is unavailable"}},
)
def readyz(state: State) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, probe in (
        ("broker", state.queue.ping),
        ("coordinator", state.coordinator.ping),
        ("store", state.storage.ping),
    ):
        try:
            probe()
            checks[name] = "ok"
        except Retryable as exc:
            log.warning("readiness: %s unavailable: %s", name, exc)  # details for the operator's log only
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
