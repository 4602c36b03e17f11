"""The distributed setup on real services: Redis broker and coordinator, an S3 server, Celery worker
processes and the API over HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.images import tar_with_broken_members
from tests.support.s3 import all_keys, new_bucket
from tests.support.stack import Stack, distributed_env, upload_archive, wait_for_job

pytestmark = pytest.mark.slow

SPEC = {"kind": "saliency", "method": "spectral_residual"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str, moto_endpoint: str) -> Iterator[Stack]:
    bucket = new_bucket(moto_endpoint)
    running = Stack(tmp_path_factory.mktemp("stack"), distributed_env(redis_server, moto_endpoint, bucket), workers=2)
    running.bucket = bucket  # type: ignore[attr-defined]
    running.endpoint = moto_endpoint  # type: ignore[attr-defined]
    yield running
    running.stop()


def test_archive_with_every_kind_of_broken_member(stack: Stack, tmp_path: Path) -> None:
    archive = tmp_path / "photos.tar"
    expected = tar_with_broken_members(archive, good=210, huge_bytes=1_500_000)
    with stack.client("key-a") as client:
        job = client.post("/v1/jobs", json={**SPEC, "input": upload_archive(client, archive)}).json()
        final = wait_for_job(client, job["id"])
        assert final["status"] == "succeeded", stack.logs()
        total = 210 + len(expected)
        assert final["progress"] == {"total": total, "done": 210, "failed": len(expected)}
        results = client.get(f"/v1/jobs/{job['id']}/results", params={"limit": 10_000}).json()
    names = Counter(item["name"] for item in results["items"])
    assert results["total"] == total == sum(names.values()) and set(names.values()) == {1}
    by_name = {item["name"]: item for item in results["items"]}
    for name, phrase in expected.items():
        assert by_name[name]["status"] == "failed" and phrase in by_name[name]["error"], by_name[name]
    good = by_name["good/img0007.png"]
    heatmap = httpx.get(good["outputs"]["heatmap"])
    assert heatmap.status_code == 200 and heatmap.content.startswith(b"\x89PNG")
    assert httpx.get(results["report"]).text.count("<figure>") > 0
    # Nothing outside the tenant's records (and their indexes), uploads and this job's prefix.
    allowed = (
        "tenants/alice/records/",
        "tenants/alice/newest/",
        "tenants/alice/index/",
        "tenants/alice/uploads/",
        f"tenants/alice/jobs/{job['id']}/",
    )
    stray = [k for k in all_keys(stack.endpoint, stack.bucket) if not k.startswith(allowed)]  # type: ignore[attr-defined]
    assert stray == []


def test_tenants_and_idempotency_over_http(stack: Stack, tmp_path: Path) -> None:
    archive = tmp_path / "small.tar"
    tar_with_broken_members(archive, good=3, huge_bytes=10)
    with stack.client("key-a") as alice, stack.client("key-b") as bob:
        spec = {**SPEC, "input": upload_archive(alice, archive)}
        first = alice.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "retry-me"})
        second = alice.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "retry-me"})
        assert first.status_code == 201 and second.status_code == 200
        assert first.json()["id"] == second.json()["id"]
        assert bob.get(f"/v1/jobs/{first.json()['id']}").status_code == 404
        wait_for_job(alice, first.json()["id"])
        assert bob.get(f"/v1/jobs/{first.json()['id']}/results").status_code == 404
        assert alice.get(f"/v1/jobs/{first.json()['id']}/results").status_code == 200


def test_s3_prefix_input(stack: Stack) -> None:
    from tests.support.images import png
    from tests.support.s3 import client as s3_client

    s3 = s3_client(stack.endpoint)  # type: ignore[attr-defined]
    source = new_bucket(stack.endpoint)  # type: ignore[attr-defined]
    for i in range(5):
        s3.put_object(Bucket=source, Key=f"set/{i}.png", Body=png(seed=i))
    s3.put_object(Bucket=source, Key="set/readme.txt", Body=b"not an image")
    with stack.client("key-a") as client:
        job = client.post("/v1/jobs", json={**SPEC, "input": f"s3://{source}/set/"}).json()
        final = wait_for_job(client, job["id"])
        assert final["progress"] == {"total": 6, "done": 5, "failed": 1}
        own = client.post("/v1/jobs", json={**SPEC, "input": f"s3://{stack.bucket}/tenants/bob/"})  # type: ignore[attr-defined]
        assert own.status_code == 422 and own.json()["error"]["fields"][0]["field"] == "input"
        assert "own storage area" in own.json()["error"]["message"]


def test_training_chain_over_celery_then_explain_with_it(stack: Stack, tmp_path: Path) -> None:
    spec = {"kind": "classifier_train", "input": "builtin:digits", "input_size": 16, "epochs": 6, "step_seconds": 1}
    with stack.client("key-a") as client:
        job = client.post("/v1/jobs", json=spec).json()
        final = wait_for_job(client, job["id"], timeout=240)
        assert final["status"] == "succeeded", stack.logs()
        assert final["progress"] == {"total": 6, "done": 6, "failed": 0}
        results = client.get(f"/v1/jobs/{job['id']}/results").json()
        assert results["summary"]["test_accuracy"] > 0.85
        assert httpx.get(results["files"]["model"]).status_code == 200
        assert client.get(f"/v1/jobs/{job['id']}", headers={"Authorization": "Bearer key-b"}).status_code == 404


def test_s3_prefix_with_tricky_key_names_has_no_ground_truth(stack: Stack) -> None:
    """A prefix shard lists S3 keys where archive shards carry ground truth: keys are never mistaken for it."""
    from tests.support.images import png
    from tests.support.s3 import client as s3_client

    s3 = s3_client(stack.endpoint)  # type: ignore[attr-defined]
    source = new_bucket(stack.endpoint)  # type: ignore[attr-defined]
    s3.put_object(Bucket=source, Key="in/box/boxes.png", Body=png(seed=1))
    with stack.client("key-a") as client:
        job = client.post("/v1/jobs", json={**SPEC, "input": f"s3://{source}/in/"}).json()
        assert wait_for_job(client, job["id"])["progress"] == {"total": 1, "done": 1, "failed": 0}
        item = client.get(f"/v1/jobs/{job['id']}/results").json()["items"][0]
        assert "quality" not in item["data"]


def test_render_targets_spread_over_workers_and_a_contact_sheet(stack: Stack) -> None:
    """A job without an input: its targets are the items, planned into shards like images."""
    model = {"arch": "tiny_cnn", "num_classes": 10, "input_size": 32, "preprocessing": "unit"}
    spec = {
        "kind": "feature_visualization",
        "model": model,
        "targets": [{"class": 3}, {"layer": "features.6", "channel": list(range(20))}],
        "steps": 5,
        "size": 32,
        "batch_size": 4,
    }
    with stack.client("key-a") as client:
        job = client.post("/v1/jobs", json=spec)
        assert job.status_code == 201, job.text
        final = wait_for_job(client, job.json()["id"], timeout=240)
        assert final["status"] == "succeeded", stack.logs()
        assert final["progress"] == {"total": 21, "done": 21, "failed": 0}  # six shards: one batch each
        results = client.get(f"/v1/jobs/{final['id']}/results", params={"limit": 100}).json()
        assert [item["name"] for item in results["items"]][:3] == ["class-3", "features.6-0", "features.6-1"]
        sheet = httpx.get(results["files"]["contact_sheet.png"])
        assert sheet.status_code == 200 and sheet.content.startswith(b"\x89PNG")
