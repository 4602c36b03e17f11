"""The results pages: at any offset and size, with or without a status filter, a page is the slice of the
whole manifest it names (finished jobs) or of the job as it stands (running jobs: finished shards final,
the others pending), in index order, every item once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared import keys
from shared.kinds import parse_spec
from shared.queueing import PLAN_TASK, SHARD_TASK
from shared.results import read_plan, shard_items
from shared.settings import Settings
from tests.support.images import tar_with_broken_members
from tests.support.runtime import recording_resources, sent_tasks
from worker.engine.finalize import finalize_job
from worker.engine.inprocess import run_job_inprocess
from worker.engine.lifecycle import continue_planning, start_job
from worker.engine.shard import run_shard
from worker.runtime.resources import Resources

STATUSES = (None, "ok", "failed", "pending")


@pytest.fixture
def settings(local_settings: Settings) -> Settings:
    # Shards closed by bytes as well as by count: of uneven sizes, as real inputs make them.
    return local_settings.model_copy(update={"shard_items": 5, "shard_bytes": 6000, "max_item_bytes": 1_000_000})


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client


def _job(settings: Settings, tmp_path: Path) -> tuple[Resources, str]:
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=17, huge_bytes=1_500_000)
    rt = recording_resources(settings)
    rt.services.storage.put_bytes(keys.upload("local", "u1", archive.name), archive.read_bytes())
    spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "upload://u1"})
    return rt, rt.services.jobs.create("local", spec.kind, spec.model_dump(mode="json"), None).id


def _pages_match(api: TestClient, job_id: str, expected: list[dict[str, Any]], final: bool) -> None:
    for status in STATUSES:
        wanted = [item for item in expected if status is None or item["status"] == status]
        for limit in (1, 3, 7, 100):
            for offset in range(0, len(expected) + 2):
                params: dict[str, Any] = {"offset": offset, "limit": limit} | ({"status": status} if status else {})
                page = api.get(f"/v1/jobs/{job_id}/results", params=params).json()
                got = [(i["index"], i["name"], i["status"], i["error"]) for i in page["items"]]
                want = [(i["index"], i["name"], i["status"], i.get("error")) for i in wanted[offset : offset + limit]]
                assert got == want, (status, offset, limit)
                assert page["total"] == len(wanted) and page["final"] is final and page["filter"] == status
                more = offset + len(got) < len(wanted) and bool(got)
                assert page["next_offset"] == (offset + len(got) if more else None), (status, offset, limit)


def test_pages_of_a_finished_job_are_slices_of_its_manifest(
    settings: Settings, tmp_path: Path, api: TestClient
) -> None:
    rt, job_id = _job(settings, tmp_path)
    run_job_inprocess(settings, "local", job_id)
    store = rt.services.storage
    manifest = store.get_json(keys.manifest("local", job_id))["items"]
    index = store.get_json(keys.results_index("local", job_id))
    sizes = [b - a for a, b in zip(index["starts"], [*index["starts"][1:], index["total"]], strict=True)]
    assert len(set(sizes)) > 1 and len(sizes) > 4  # shards of several sizes
    assert {item["status"] for item in manifest} == {"ok", "failed"}
    _pages_match(api, job_id, manifest, final=True)
    page = api.get(f"/v1/jobs/{job_id}/results").json()
    assert page["summary"]["total"] == len(manifest) and page["report"] and page["manifest"] and page["planned"]


def test_a_running_job_shows_finished_shards_and_pending_items(
    settings: Settings, tmp_path: Path, api: TestClient
) -> None:
    settings = settings.model_copy(update={"plan_step_s": 0.0})  # a shard a step
    rt, job_id = _job(settings, tmp_path)
    start_job(rt, "local", job_id)  # the first planning step: one shard planned and sent
    view = api.get(f"/v1/jobs/{job_id}/results").json()
    assert view["planned"] is False and view["final"] is False and view["status"] == "running"
    first = [i for i in view["items"]]
    assert first and all(i["status"] == "pending" for i in first) and view["total"] == len(first)
    for _ in range(3):  # three more steps
        step = [args for name, args in sent_tasks(rt) if name == PLAN_TASK][-1]
        continue_planning(rt, *step)
    shards = [args for name, args in sent_tasks(rt) if name == SHARD_TASK]
    run_shard(rt, *shards[0])
    run_shard(rt, *shards[2])
    store = rt.services.storage
    plan = read_plan(store, "local", job_id)
    assert plan is not None and not plan.planned and len(plan.starts) == 4
    snapshot = [item for shard in range(4) for item in shard_items(store, "local", job_id, shard)]
    assert [item["index"] for item in snapshot] == list(range(plan.total))
    statuses = [item["status"] for item in snapshot]
    assert "pending" in statuses and "ok" in statuses
    _pages_match(api, job_id, snapshot, final=False)
    page = api.get(f"/v1/jobs/{job_id}/results").json()
    assert page["summary"] is None and page["report"] is None and page["manifest"] is None
    ok = next(i for i in page["items"] if i["status"] == "ok")
    assert api.get(ok["outputs"]["heatmap"]).content.startswith(b"\x89PNG")  # a finished item's output, now


def test_results_are_the_tenants_own(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_keys="key-a=alice,key-b=bob", signing_secret="s")
    rt = recording_resources(settings)
    spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "upload://u1"})
    job_id = rt.services.jobs.create("alice", spec.kind, spec.model_dump(mode="json"), None).id
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        mine = client.get(f"/v1/jobs/{job_id}/results", headers={"Authorization": "Bearer key-a"})
        theirs = client.get(f"/v1/jobs/{job_id}/results", headers={"Authorization": "Bearer key-b"})
        bad = client.get(
            f"/v1/jobs/{job_id}/results", params={"status": "done"}, headers={"Authorization": "Bearer key-a"}
        )
    assert mine.status_code == 200 and theirs.status_code == 404
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "status"


def test_a_page_after_the_job_ends_is_final(settings: Settings, tmp_path: Path, api: TestClient) -> None:
    """The API keeps a planned job's index; once the job ends, its pages are final all the same."""
    rt, job_id = _job(settings, tmp_path)
    start_job(rt, "local", job_id)  # planned whole, in one step
    before = api.get(f"/v1/jobs/{job_id}/results", params={"status": "pending"}).json()
    assert before["planned"] and not before["final"] and before["total"] == len(before["items"]) > 0
    for name, args in sent_tasks(rt):
        if name == SHARD_TASK:
            run_shard(rt, *args)
    finalize_job(rt.services, "local", job_id)
    after = api.get(f"/v1/jobs/{job_id}/results", params={"status": "pending"}).json()
    assert after["final"] and after["total"] == 0 and after["items"] == []
    assert api.get(f"/v1/jobs/{job_id}/results").json()["summary"]["total"] == before["total"]
