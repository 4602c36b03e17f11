"""Recovery on real processes, with the shipped recovery settings: a whole worker killed with SIGKILL, Redis
restarted without its data while jobs wait, the store away for five minutes, an input that can never
work. Every accepted job ends, every item exactly once, and no job is left running with nothing on it."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SEAWEED_KEYS
from tests.support.images import tar_with_broken_members
from tests.support.procs import seaweed_ports, start_redis, start_seaweed, wait_until
from tests.support.s3 import new_bucket
from tests.support.stack import Stack, distributed_env, upload_archive, wait_for_job, wait_for_progress

pytestmark = pytest.mark.slow

SLOW_SPEC = {"kind": "saliency", "method": "spectral_residual", "batch_size": 4}


def _exactly_once(client: httpx.Client, job: dict[str, Any], good: int) -> list[dict[str, Any]]:
    results = client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 10_000}).json()
    names = Counter(item["name"] for item in results["items"])
    assert sum(names.values()) == results["total"] == job["progress"]["total"], results["total"]
    assert set(names.values()) == {1}
    assert sum(1 for item in results["items"] if item["status"] == "ok") == good
    return list(results["items"])


def _nothing_running(client: httpx.Client) -> None:
    for status in ("queued", "running"):
        assert client.get("/v1/jobs", params={"status": status}).json()["items"] == [], status


def test_a_whole_worker_killed_mid_shard_is_recovered_within_two_minutes(
    tmp_path: Path, redis_server: str, moto_endpoint: str
) -> None:
    env = distributed_env(redis_server, moto_endpoint, new_bucket(moto_endpoint)) | {
        "FOVEA_BROKER_URL": redis_server + "/8",
        "FOVEA_REDIS_URL": redis_server + "/9",
    }
    stack = Stack(tmp_path, env, workers=2, batch_delay_s=0.25)
    try:
        archive = tmp_path / "in.tar"
        tar_with_broken_members(archive, good=120, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            job = client.post("/v1/jobs", json={**SLOW_SPEC, "input": upload_archive(client, archive)}).json()
            wait_for_progress(client, job["id"], at_least=20)
            victim = stack.workers[0]
            os.killpg(victim.pid, signal.SIGKILL)  # the main process and its pool child, as a lost machine
            killed = time.monotonic()
            final = wait_for_job(client, job["id"], timeout=240)
            recovery = time.monotonic() - killed
            assert final["status"] == "succeeded", stack.logs()
            assert recovery < 120, f"the job finished {recovery:.0f} s after the kill"
            _exactly_once(client, final, good=120)
            _nothing_running(client)
        (tmp_path / "recovery_seconds.txt").write_text(f"{recovery:.1f}\n")
    finally:
        stack.stop()


def test_redis_restarted_without_its_data_loses_no_accepted_job(tmp_path: Path, moto_endpoint: str) -> None:
    redis_proc, port = start_redis(tmp_path / "redis")  # no AOF, no snapshots: a restart forgets everything
    redis_url = f"redis://127.0.0.1:{port}"
    stack = Stack(tmp_path, distributed_env(redis_url, moto_endpoint, new_bucket(moto_endpoint)), batch_delay_s=0.25)
    try:
        archive = tmp_path / "in.tar"
        tar_with_broken_members(archive, good=40, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            uri = upload_archive(client, archive)
            jobs = [client.post("/v1/jobs", json={**SLOW_SPEC, "input": uri}).json() for _ in range(3)]
            wait_for_progress(client, jobs[0]["id"], at_least=8)
            waiting = client.get(f"/v1/jobs/{jobs[2]['id']}").json()
            assert waiting["status"] in ("queued", "running") and waiting["progress"]["done"] == 0  # still waiting
            redis_proc.stop()
            redis_proc, _ = start_redis(tmp_path / "redis", port)
            for job in jobs:
                final = wait_for_job(client, job["id"], timeout=240)
                assert final["status"] == "succeeded", stack.logs()
                _exactly_once(client, final, good=40)
            _nothing_running(client)
    finally:
        stack.stop()
        redis_proc.stop()


@pytest.mark.timeout(900)
def test_the_store_down_for_five_minutes_fails_no_item(tmp_path: Path, redis_server: str) -> None:
    ports = seaweed_ports()
    store, endpoint = start_seaweed(tmp_path / "weed", *SEAWEED_KEYS, ports=ports)
    access, secret = SEAWEED_KEYS
    env = distributed_env(redis_server, endpoint, new_bucket(endpoint, access, secret)) | {
        "FOVEA_BROKER_URL": redis_server + "/10",
        "FOVEA_REDIS_URL": redis_server + "/11",
        "FOVEA_S3_ACCESS_KEY_ID": access,
        "FOVEA_S3_SECRET_ACCESS_KEY": secret,
    }
    stack = Stack(tmp_path, env, batch_delay_s=0.25)
    try:
        archive = tmp_path / "in.tar"
        tar_with_broken_members(archive, good=60, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            job = client.post("/v1/jobs", json={**SLOW_SPEC, "input": upload_archive(client, archive)}).json()
            wait_for_progress(client, job["id"], at_least=8)
            store.stop()
            time.sleep(300)
            store, _ = start_seaweed(tmp_path / "weed", *SEAWEED_KEYS, ports=ports)
            final = wait_for_job(client, job["id"], timeout=300)
            assert final["status"] == "succeeded", stack.logs()
            items = _exactly_once(client, final, good=60)
            assert not any("store" in (item["error"] or "") for item in items)
            _nothing_running(client)
    finally:
        stack.stop()
        store.stop()


def test_an_input_that_can_never_work_fails_within_seconds(
    tmp_path: Path, redis_server: str, moto_endpoint: str
) -> None:
    env = distributed_env(redis_server, moto_endpoint, new_bucket(moto_endpoint)) | {
        "FOVEA_BROKER_URL": redis_server + "/12",
        "FOVEA_REDIS_URL": redis_server + "/13",
    }
    stack = Stack(tmp_path, env)
    try:
        not_an_archive = tmp_path / "photo.tar"
        not_an_archive.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
        with stack.client("key-a") as client:
            cases = {
                "upload": {"input": upload_archive(client, not_an_archive)},
                "missing bucket": {"input": "s3://no-such-bucket-here/photos.tar"},
                "missing object": {"input": f"s3://{new_bucket(moto_endpoint)}/nothing.tar"},
            }
            for case, extra in cases.items():
                job = client.post("/v1/jobs", json={**SLOW_SPEC, **extra})
                assert job.status_code == 201, (case, job.text)
                final = wait_for_job(client, job.json()["id"], timeout=60)
                assert final["status"] == "failed" and final["error"], (case, final)
            # Failing fast means on the first try: had the error been taken for an outage, the task would
            # have waited it out and been handed back (minutes). The logs say so whatever the machine's load.
            worker_log = "\n".join(w.log.read_text(errors="replace") for w in stack.workers if w.log)
            assert "for an outage" not in worker_log and "handed back" not in worker_log, worker_log[-4000:]
            wait_until(lambda: not client.get("/v1/jobs", params={"status": "running"}).json()["items"], 10, "idle")
            _nothing_running(client)
    finally:
        stack.stop()
