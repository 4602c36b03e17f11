"""A deployment whose planning and finalising run on a control worker of their own, at a lower CPU
priority, while the item workers take shards only: every task lands on its kind of worker, and a job
ends exactly once as it does with workers that take everything."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.support.images import tar_with_broken_members
from tests.support.s3 import new_bucket
from tests.support.stack import Stack, distributed_env, upload_archive, wait_for_job

pytestmark = pytest.mark.slow


def _tasks_received(log: Path | None) -> Counter[str]:
    assert log is not None
    return Counter(re.findall(r"Task (fovea\.\w+)\[", log.read_text(errors="replace")))


def test_planning_and_finalising_run_on_the_control_worker_only(
    tmp_path: Path, redis_server: str, moto_endpoint: str
) -> None:
    env = distributed_env(redis_server, moto_endpoint, new_bucket(moto_endpoint)) | {
        "FOVEA_BROKER_URL": redis_server + "/8",
        "FOVEA_REDIS_URL": redis_server + "/9",
    }
    stack = Stack(tmp_path, env, workers=1, control_worker=True)
    try:
        assert stack.control is not None
        assert os.getpriority(os.PRIO_PROCESS, stack.control.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
        archive = tmp_path / "photos.tar"
        broken = tar_with_broken_members(archive, good=40, huge_bytes=1_500_000)
        with stack.client("key-a") as client:
            spec = {"kind": "saliency", "method": "spectral_residual", "input": upload_archive(client, archive)}
            job = client.post("/v1/jobs", json=spec).json()
            final = wait_for_job(client, job["id"], timeout=180)
            assert final["status"] == "succeeded", stack.logs()
            results = client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 1000}).json()
        names = Counter(item["name"] for item in results["items"])
        assert sum(names.values()) == 40 + len(broken) and set(names.values()) == {1}
        items, control = _tasks_received(stack.workers[0].log), _tasks_received(stack.control.log)
        assert set(items) == {"fovea.shard"} and items["fovea.shard"] >= 3, (items, stack.logs())
        assert set(control) == {"fovea.plan", "fovea.finalize"}, (control, stack.logs())
    finally:
        stack.stop()
