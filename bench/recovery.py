"""Recovery times with the shipped recovery settings, on real processes (redis-server, a moto S3 server,
uvicorn, Celery workers), the figures behind the README's guarantees table:

  1. ``kill -9`` of a whole worker (main process and pool child) mid-shard, two workers: seconds from the
     kill to the job's end, every item exactly once;
  2. Redis restarted without its data mid-job, two more jobs waiting: seconds from Redis being back to
     the first job's progress moving again, and to every job's end;
  3. cancel: seconds from ``POST /cancel`` to a final status, and to the last item finished.

Each scenario prints one JSON line. Workers batch slowly on purpose (``batch_delay_s``) so that the
faults land mid-shard, as in the tests.

    .venv/bin/python bench/recovery.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.images import tar_with_broken_members  # noqa: E402
from tests.support.procs import Proc, start_moto, start_redis  # noqa: E402
from tests.support.s3 import new_bucket  # noqa: E402
from tests.support.stack import Stack, distributed_env, upload_archive, wait_for_job, wait_for_progress  # noqa: E402

SPEC = {"kind": "saliency", "method": "spectral_residual", "batch_size": 4}


def _exactly_once(client: httpx.Client, job_id: str) -> bool:
    results = client.get(f"/v1/jobs/{job_id}/results", params={"limit": 10_000}).json()
    names = Counter(item["name"] for item in results["items"])
    return sum(names.values()) == results["total"] and set(names.values()) == {1}


def _until(condition: Callable[[], bool], timeout: float = 300, step: float = 0.1) -> float:
    """Seconds until ``condition`` holds (polled)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError("the condition never held")
        time.sleep(step)
    return time.monotonic() - start


def _progress(client: httpx.Client, job_id: str) -> int:
    progress = client.get(f"/v1/jobs/{job_id}").json()["progress"]
    return int(progress["done"]) + int(progress["failed"])


def _done(client: httpx.Client, job_id: str) -> int:
    """Items finished ok (a cancel's own bookkeeping marks the rest failed: that is not work done)."""
    return int(client.get(f"/v1/jobs/{job_id}").json()["progress"]["done"])


def worker_killed(work: Path, redis_url: str, s3: str) -> dict[str, Any]:
    stack = Stack(work, distributed_env(redis_url, s3, new_bucket(s3)), workers=2, batch_delay_s=0.25)
    try:
        archive = work / "in.tar"
        tar_with_broken_members(archive, good=120, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            job = client.post("/v1/jobs", json={**SPEC, "input": upload_archive(client, archive)}).json()
            wait_for_progress(client, job["id"], at_least=20)
            os.killpg(stack.workers[0].pid, signal.SIGKILL)
            killed = time.monotonic()
            final = wait_for_job(client, job["id"], timeout=300)
            return {
                "figure": "kill -9 of a whole worker: kill to job end",
                "seconds": round(time.monotonic() - killed, 1),
                "status": final["status"],
                "exactly_once": _exactly_once(client, job["id"]),
            }
    finally:
        stack.stop()


def redis_restarted(work: Path, s3: str) -> dict[str, Any]:
    redis_proc, port = start_redis(work / "redis")
    stack = Stack(work, distributed_env(f"redis://127.0.0.1:{port}", s3, new_bucket(s3)), batch_delay_s=0.25)
    try:
        archive = work / "in.tar"
        tar_with_broken_members(archive, good=40, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            uri = upload_archive(client, archive)
            jobs = [client.post("/v1/jobs", json={**SPEC, "input": uri}).json()["id"] for _ in range(3)]
            wait_for_progress(client, jobs[0], at_least=8)
            redis_proc.stop()
            redis_proc, _ = start_redis(work / "redis", port)
            back = time.monotonic()
            before = _progress(client, jobs[0])  # the durable copy, shown while the coordinator was lost
            moving = _until(lambda: _progress(client, jobs[0]) > before)
            finals = [wait_for_job(client, job, timeout=300) for job in jobs]
            return {
                "figure": "Redis restarted without its data: back to progress moving, and to every job's end",
                "seconds_to_progress": round(moving, 1),
                "seconds_to_all_done": round(time.monotonic() - back, 1),
                "statuses": [final["status"] for final in finals],
                "exactly_once": all(_exactly_once(client, job) for job in jobs),
            }
    finally:
        stack.stop()
        redis_proc.stop()


def canceled(work: Path, redis_url: str, s3: str) -> dict[str, Any]:
    stack = Stack(work, distributed_env(redis_url, s3, new_bucket(s3)), workers=2, batch_delay_s=0.25)
    try:
        archive = work / "in.tar"
        tar_with_broken_members(archive, good=200, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            job = client.post("/v1/jobs", json={**SPEC, "input": upload_archive(client, archive)}).json()
            wait_for_progress(client, job["id"], at_least=20)
            asked = time.monotonic()
            client.post(f"/v1/jobs/{job['id']}/cancel").raise_for_status()
            final = time.monotonic() - asked
            # The last item finished: the count of ok items stays put for 3 s after it.
            last, last_change = _done(client, job["id"]), time.monotonic()
            while time.monotonic() - last_change < 3:
                now = _done(client, job["id"])
                if now != last:
                    last, last_change = now, time.monotonic()
                time.sleep(0.05)
            return {
                "figure": "cancel: request to final status, and to the last item finished",
                "seconds_to_status": round(final, 2),
                "seconds_to_last_item": round(max(0.0, last_change - asked), 2),
            }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--only", choices=("kill", "redis", "cancel"), help="run one scenario")
    args = parser.parse_args()
    machine = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        redis_proc, port = start_redis(root / "redis-shared")
        moto: Proc
        moto, s3 = start_moto(root / "moto")
        redis_url = f"redis://127.0.0.1:{port}"
        try:
            for run in range(args.runs):
                for name, scenario in (
                    ("kill", lambda w: worker_killed(w, redis_url, s3)),
                    ("redis", lambda w: redis_restarted(w, s3)),
                    ("cancel", lambda w: canceled(w, redis_url, s3)),
                ):
                    if args.only not in (None, name):
                        continue
                    _flush(redis_url)
                    print(json.dumps({"run": run, **scenario(root / f"{name}{run}"), **machine}), flush=True)
        finally:
            redis_proc.stop()
            moto.stop()


def _flush(redis_url: str) -> None:
    """Each scenario starts from an empty broker and coordinator."""
    import redis

    redis.Redis.from_url(redis_url).flushall()


if __name__ == "__main__":
    main()
