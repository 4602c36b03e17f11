"""Faults on real processes: a SIGKILLed worker child, a cancel mid-job, the broker going away."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.images import BROKEN_KINDS, tar_with_broken_members
from tests.support.procs import start_redis, wait_until
from tests.support.s3 import all_keys, new_bucket
from tests.support.stack import Stack, distributed_env, upload_archive, wait_for_job, wait_for_progress

pytestmark = pytest.mark.slow

# Four batches per shard, each slowed down, so a job lasts long enough to hit it mid-shard.
SLOW_SPEC = {"kind": "saliency", "method": "spectral_residual", "batch_size": 4}
BATCH_DELAY_S = 0.25


@pytest.mark.parametrize("packed", [False, True], ids=["objects", "packed"])
def test_sigkilled_worker_child_mid_shard(tmp_path: Path, redis_server: str, moto_endpoint: str, packed: bool) -> None:
    bucket = new_bucket(moto_endpoint)
    stack = Stack(
        tmp_path,
        distributed_env(redis_server, moto_endpoint, bucket)
        | {"FOVEA_BROKER_URL": redis_server + "/4", "FOVEA_REDIS_URL": redis_server + "/5"},
        batch_delay_s=BATCH_DELAY_S,
    )
    try:
        archive = tmp_path / "in.tar"
        tar_with_broken_members(archive, good=80, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            spec = {**SLOW_SPEC, "input": upload_archive(client, archive), "packed_outputs": packed}
            job = client.post("/v1/jobs", json=spec).json()
            wait_for_progress(client, job["id"], at_least=6)
            children = stack.worker_children(stack.workers[0])
            assert children, stack.logs()
            for pid in children:
                os.kill(pid, signal.SIGKILL)  # the pool child dies in the middle of a shard

            def snapshot() -> bool:  # a running job's page: its finished shards final, the others pending
                page = client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 10_000}).json()
                assert page["final"] is False and page["summary"] is None
                return {"ok", "pending"} <= {item["status"] for item in page["items"]}

            wait_until(snapshot, 120, "a page with finished and pending items")
            final = wait_for_job(client, job["id"], timeout=240)
            assert final["status"] == "succeeded", stack.logs()
            results = client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 10_000}).json()
        names = Counter(item["name"] for item in results["items"])
        assert sum(names.values()) == results["total"] == final["progress"]["total"] and set(names.values()) == {1}
        assert sum(1 for i in results["items"] if i["status"] == "ok") == 80
        assert "WorkerLostError" in stack.workers[0].tail(400) or "SIGKILL" in stack.workers[0].tail(400)
        stored = all_keys(moto_endpoint, bucket)
        if packed:  # one pack a shard at most, every one an item points into (a dead attempt's were dropped)
            assert not any(f"{job['id']}/items/" in key for key in stored)
            packs = {key.split(f"{job['id']}/", 1)[1] for key in stored if f"{job['id']}/packs/" in key}
            used = {path.split("#")[0] for item in results["items"] for path in item["packed"].values()}
            assert packs == used and len(used) <= final["progress"]["total"] // 16 + 1
            item = next(i for i in results["items"] if i["status"] == "ok")
            assert httpx.get(item["outputs"]["overlay"]).content.startswith(b"\xff\xd8")  # the API's range route
    finally:
        stack.stop()


def test_cancel_mid_job_keeps_finished_outputs(tmp_path: Path, redis_server: str, moto_endpoint: str) -> None:
    bucket = new_bucket(moto_endpoint)
    env = distributed_env(redis_server, moto_endpoint, bucket) | {
        "FOVEA_BROKER_URL": redis_server + "/6",
        "FOVEA_REDIS_URL": redis_server + "/7",
    }
    stack = Stack(tmp_path, env, batch_delay_s=BATCH_DELAY_S)
    try:
        archive = tmp_path / "in.tar"
        tar_with_broken_members(archive, good=200, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            job = client.post("/v1/jobs", json={**SLOW_SPEC, "input": upload_archive(client, archive)}).json()
            wait_for_progress(client, job["id"], at_least=8)
            started = time.monotonic()
            assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "canceled"
            assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "canceled"
            # Workers notice between items, even inside a batch: nothing more finishes within a second or two
            # (shards that wind down count their unprocessed items as canceled: failed, not done).
            time.sleep(2)
            frozen = client.get(f"/v1/jobs/{job['id']}").json()["progress"]
            time.sleep(1.5)
            assert client.get(f"/v1/jobs/{job['id']}").json()["progress"]["done"] == frozen["done"]
            wait_until(lambda: client.get(f"/v1/jobs/{job['id']}/results").json()["total"] > 0, 60, "canceled manifest")
            assert time.monotonic() - started < 60
            results = client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 10_000}).json()
        assert results["status"] == "canceled" and results["total"] == 200 + len(BROKEN_KINDS)
        ok = [i for i in results["items"] if i["status"] == "ok"]
        canceled = [i for i in results["items"] if "canceled" in (i["error"] or "")]
        assert len(ok) == frozen["done"] > 0 and canceled
        assert len({i["name"] for i in results["items"]}) == len(results["items"]) == results["total"]
        for item in ok[:5]:
            assert httpx.get(item["outputs"]["overlay"]).status_code == 200
    finally:
        stack.stop()


def test_broker_down_is_503_and_reads_still_work(tmp_path: Path, moto_endpoint: str) -> None:
    redis_proc, port = start_redis(tmp_path / "redis")
    redis_url = f"redis://127.0.0.1:{port}"
    stack = Stack(tmp_path, distributed_env(redis_url, moto_endpoint, new_bucket(moto_endpoint)))
    try:
        archive = tmp_path / "in.tar"
        tar_with_broken_members(archive, good=3, huge_bytes=10)
        with stack.client("key-a") as client:
            uri = upload_archive(client, archive)
            job = client.post("/v1/jobs", json={"kind": "saliency", "method": "spectral_residual", "input": uri}).json()
            wait_for_job(client, job["id"])
            redis_proc.stop()
            refused = client.post("/v1/jobs", json={"kind": "saliency", "method": "spectral_residual", "input": uri})
            assert refused.status_code == 503 and refused.headers["Retry-After"]
            assert refused.json()["error"]["code"] == "unavailable"
            assert client.get("/readyz").status_code == 503
            read = client.get(f"/v1/jobs/{job['id']}")
            assert read.status_code == 200 and read.json()["status"] == "succeeded"
            assert client.get(f"/v1/jobs/{job['id']}/results").status_code == 200
            redis_proc, _ = start_redis(tmp_path / "redis", port)  # back: submissions work again
            wait_until(lambda: client.get("/readyz").status_code == 200, 30, "ready again")
            again = client.post("/v1/jobs", json={"kind": "saliency", "method": "spectral_residual", "input": uri})
            assert again.status_code == 201
            assert wait_for_job(client, again.json()["id"])["status"] == "succeeded"
    finally:
        stack.stop()
        redis_proc.stop()
