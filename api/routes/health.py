"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import State
from shared.errors import Retryable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Broker, coordinator and store are reachable")
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
            checks[name] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )


@router.get("/metrics", summary="Prometheus metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
