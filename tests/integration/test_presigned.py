"""Presigned URLs against SeaweedFS, which checks signatures and expiry (moto checks neither)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SEAWEED_KEYS
from tests.support.images import tar_with_broken_members
from tests.support.s3 import new_bucket
from tests.support.stack import Stack, distributed_env, upload_archive, wait_for_job

pytestmark = pytest.mark.slow


def test_presigned_results_work_then_expire_and_resist_tampering(
    tmp_path: Path, redis_server: str, seaweed_endpoint: str
) -> None:
    bucket = new_bucket(seaweed_endpoint, *SEAWEED_KEYS)
    env = distributed_env(redis_server, seaweed_endpoint, bucket) | {
        "FOVEA_BROKER_URL": redis_server + "/8",
        "FOVEA_REDIS_URL": redis_server + "/9",
        "FOVEA_S3_ACCESS_KEY_ID": SEAWEED_KEYS[0],
        "FOVEA_S3_SECRET_ACCESS_KEY": SEAWEED_KEYS[1],
        "FOVEA_PRESIGN_TTL_S": "4",
    }
    stack = Stack(tmp_path, env)
    try:
        archive = tmp_path / "in.tar"
        tar_with_broken_members(archive, good=4, huge_bytes=10)
        with stack.client("key-a") as client:
            # The upload itself goes through a presigned PUT that SeaweedFS verifies.
            job = client.post(
                "/v1/jobs",
                json={"kind": "saliency", "method": "spectral_residual", "input": upload_archive(client, archive)},
            ).json()
            assert wait_for_job(client, job["id"])["status"] == "succeeded", stack.logs()
            results = client.get(f"/v1/jobs/{job['id']}/results").json()
        url = next(i for i in results["items"] if i["status"] == "ok")["outputs"]["heatmap"]
        fresh = httpx.get(url)
        assert fresh.status_code == 200 and fresh.content.startswith(b"\x89PNG")
        other_key = url.replace("/heatmap.png", "/overlay.jpg")
        assert httpx.get(other_key).status_code == 403  # the signature covers the key
        assert httpx.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
        time.sleep(5)
        assert httpx.get(url).status_code == 403  # expired
    finally:
        stack.stop()
