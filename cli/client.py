"""A small HTTP client of the Fovea API (FOVEA_API_URL, FOVEA_API_KEY)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from cli.download import download
from shared.jobs import TERMINAL, JobStatus


class ApiFailure(Exception):
    """The API answered with an error: its status, and its message with one line per field."""

    def __init__(self, status: int, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.status, self.lines = status, lines


class Client:
    def __init__(self, url: str | None = None, key: str | None = None, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("FOVEA_API_URL") or "http://127.0.0.1:8000").rstrip("/")
        key = key or os.environ.get("FOVEA_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.files = httpx.Client(timeout=300)
        """For the URLs results give (presigned or signed): no API key goes with them."""

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                lines = [f"{f['field']}: {f['message']}" for f in error.get("fields") or []] or [error["message"]]
            except Exception:
                lines = [response.text[:500]]
            raise ApiFailure(response.status_code, [f"{method} {path}: HTTP {response.status_code}", *lines])
        return response.json()

    def upload(self, path: Path) -> str:
        """Upload an archive through a presigned PUT; returns its upload:// URI."""
        size = path.stat().st_size
        upload = self._call("POST", "/v1/uploads", json={"filename": path.name, "size": size})
        with (
            path.open("rb") as handle,
            tqdm(total=size, unit="B", unit_scale=True, desc=f"upload {path.name}", leave=False) as bar,
        ):

            def chunks() -> Any:
                while chunk := handle.read(1 << 20):
                    bar.update(len(chunk))
                    yield chunk

            response = httpx.put(
                upload["put_url"], content=chunks(), headers={"Content-Length": str(size)}, timeout=None
            )
        if response.status_code >= 300:
            raise ApiFailure(response.status_code, [f"PUT upload: HTTP {response.status_code}: {response.text[:300]}"])
        return str(upload["uri"])

    def submit(self, spec: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return dict(self._call("POST", "/v1/jobs", json=spec, headers=headers))

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/jobs/{job_id}"))

    def jobs(self, **params: Any) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/jobs", params={k: v for k, v in params.items() if v is not None}))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/jobs/{job_id}/cancel"))

    def results(self, job_id: str, offset: int = 0, limit: int = 1000, status: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"offset": offset, "limit": limit} | ({"status": status} if status else {})
        return dict(self._call("GET", f"/v1/jobs/{job_id}/results", params=params))

    def wait(self, job_id: str, *, progress: bool = True, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll until the job ends, with a progress bar showing items/s and the ETA."""
        bar = tqdm(total=None, unit="img", desc=job_id, disable=not progress, dynamic_ncols=True)
        try:
            while True:
                job = self.job(job_id)
                p = job["progress"]
                if p["total"] is not None and bar.total != p["total"]:
                    bar.total = p["total"]
                bar.n = p["done"] + p["failed"]
                bar.set_postfix(status=job["status"], failed=p["failed"], refresh=False)
                bar.refresh()
                if JobStatus(job["status"]) in TERMINAL:
                    return job
                time.sleep(poll_s)
        finally:
            bar.close()

    def download(self, job_id: str, out: Path) -> Path:
        """Download a job's report, manifest and outputs into ``out`` (see ``cli.download``)."""
        return download(self, job_id, out)
