"""A running Fovea: the API (uvicorn) and Celery workers as real processes, with an HTTP client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.procs import Proc, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


class Stack:
    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        workers: int = 1,
        batch_delay_s: float = 0.0,
        control_worker: bool = False,
    ) -> None:
        """``batch_delay_s``: workers whose saliency batches each take this much longer (fault drills).
        ``control_worker``: planning and finalising run on a worker of their own at a lower CPU priority,
        and the ``workers`` take items only (the deployment that keeps GPU workers on GPU work)."""
        self.workdir = workdir
        self.batch_delay_s = batch_delay_s
        self.queues = "items" if control_worker else "items,control"
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {"FOVEA_DATA_DIR": str(workdir / "data"), "PYTHONUNBUFFERED": "1", **env}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self._start_api()
        self.workers = [self.start_worker(i) for i in range(workers)]
        self.control: Proc | None = None
        if control_worker:
            args = [sys.executable, "-m", "cli.main", "worker", "--queues", "control", "--nice", "10"]
            self.control = Proc(args, env=self.env, log=self.workdir / "control.log", cwd=REPO)
        wait_until(lambda: httpx.get(self.url + "/readyz", timeout=2).status_code == 200, 60, "API ready")

    def _start_api(self) -> Proc:
        args = [sys.executable, "-m", "cli.main", "api", "--port", str(self.port)]
        return Proc(args, env=self.env, log=self.workdir / "api.log", cwd=REPO)

    def start_worker(self, index: int) -> Proc:
        if self.batch_delay_s:
            args = [sys.executable, "-m", "tests.support.slow_worker", str(self.batch_delay_s)]
        else:
            args = [sys.executable, "-m", "cli.main", "worker", "--concurrency", "1", "--queues", self.queues]
        return Proc(args, env=self.env, log=self.workdir / f"worker{index}.log", cwd=REPO)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def worker_children(self, worker: Proc) -> list[int]:
        """PIDs of the prefork pool children of a worker (the processes that run tasks)."""
        out = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def processes(self) -> list[Proc]:
        return [self.api, *self.workers, *([self.control] if self.control else [])]

    def stop(self) -> None:
        for proc in self.processes():
            proc.stop()

    def logs(self) -> str:
        parts = [f"--- {p.log.name if p.log else '?'}\n{p.tail(60)}" for p in self.processes()]
        return "\n".join(parts)


def upload_archive(client: httpx.Client, path: Path) -> str:
    created = client.post("/v1/uploads", json={"filename": path.name})
    created.raise_for_status()
    put = httpx.put(created.json()["put_url"], content=path.read_bytes(), timeout=60)
    assert put.status_code in (200, 201), put.text
    return str(created.json()["uri"])


def wait_for_job(
    client: httpx.Client, job_id: str, timeout: float = 300, until: set[str] | None = None
) -> dict[str, Any]:
    until = until or {"succeeded", "failed", "canceled"}
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 503:  # a part the API needs is away (a store coming back): ask again
            time.sleep(0.5)
            continue
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in until:
            return dict(job)
        time.sleep(0.25)
    raise TimeoutError(f"job {job_id} did not reach {until}: {job}")


def wait_for_progress(client: httpx.Client, job_id: str, at_least: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["progress"]["done"] + job["progress"]["failed"] >= at_least:
            return dict(job)
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} made no progress: {job}")


def distributed_env(redis_url: str, s3_endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    env = {
        "FOVEA_BROKER_URL": redis_url + "/0",
        "FOVEA_REDIS_URL": redis_url + "/1",
        "FOVEA_STORAGE_URL": f"s3://{bucket}",
        "FOVEA_S3_ENDPOINT_URL": s3_endpoint,
        "FOVEA_S3_ACCESS_KEY_ID": "testing",
        "FOVEA_S3_SECRET_ACCESS_KEY": "testing",
        "FOVEA_API_KEYS": "key-a=alice,key-b=bob",
        "FOVEA_SIGNING_SECRET": "integration",
        "FOVEA_SHARD_ITEMS": "16",
        "FOVEA_MAX_ITEM_BYTES": "1000000",
    }
    env.update(extra)
    if os.environ.get("FOVEA_ASSETS_DIR"):
        env.setdefault("FOVEA_ASSETS_DIR", os.environ["FOVEA_ASSETS_DIR"])
    return env
