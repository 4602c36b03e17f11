"""Prometheus metrics of the API process."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

JOBS_SUBMITTED = Counter("fovea_jobs_submitted_total", "Jobs accepted", ["kind"])
REQUESTS = Histogram(
    "fovea_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
