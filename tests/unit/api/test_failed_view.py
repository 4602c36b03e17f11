"""The finaliser's view of an ended job's failed items: a page filtered by ``failed`` is a slice of the
failed items in index order at any offset, read from the view when failures are few; where they are half
the job or more the view is dropped and the shard index serves those pages; no status filter ever builds
a view on request (that would read the whole job while the client waits)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared import keys, result_views
from shared.results import ShardIndex, iter_shards
from shared.settings import Settings
from tests.support.runtime import recording_resources
from tests.support.synthetic_jobs import ended_job
from worker.engine.failed_view import FAILED
from worker.engine.finalize import finalize_job
from worker.runtime.services import Services


@pytest.fixture
def api(local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(result_views, "CHUNK", 7)  # pages across chunk boundaries
    with TestClient(create_app(local_settings), base_url="http://127.0.0.1:8000") as client:
        yield client


def _finalised(services: Services, items: int, fail_every: int) -> tuple[str, list[dict[str, object]]]:
    """A job's shard manifests and plan, finalised for real; its items as the shards hold them."""
    store = services.storage
    job_id = ended_job(store, services.jobs, "local", items=items, shard_items=9, fail_every=fail_every)
    starts = list(range(0, items, 9))
    plan = {"step": 1, "complete": True, "total": items, "shards": len(starts), "starts": starts, "cursor": None}
    store.put_json(keys.plan("local", job_id), plan)
    store.delete(keys.results_index("local", job_id))  # the finaliser writes it
    finalize_job(services, "local", job_id)
    index = ShardIndex(items, starts, True, True, {})
    return job_id, [item for _shard, rows in iter_shards(store, "local", job_id, index) for item in rows]


def _views(services: Services, job_id: str) -> list[str]:
    prefix = keys.result_view("local", job_id, FAILED.name).rsplit("/", 2)[0] + "/"
    return sorted(info.key.removeprefix(prefix) for info in services.storage.list(prefix))


def _pages_match(api: TestClient, job_id: str, items: list[dict[str, object]], status: str) -> None:
    want = [item["index"] for item in items if item["status"] == status]
    for limit in (1, 5, 7, 20):
        for offset in (0, 1, 6, 7, 13, len(want) - 1, len(want), len(want) + 3):
            page = api.get(f"/v1/jobs/{job_id}/results", params={"offset": offset, "limit": limit, "status": status})
            assert page.status_code == 200, page.text
            body = page.json()
            assert [i["index"] for i in body["items"]] == want[offset : offset + limit], (status, offset, limit)
            assert body["total"] == len(want) and body["final"]


def test_few_failures_are_paged_from_the_finalisers_view(local_settings: Settings, api: TestClient) -> None:
    services = recording_resources(local_settings).services
    job_id, items = _finalised(services, items=61, fail_every=5)  # 12 of 61 failed
    written = _views(services, job_id)
    assert written == [f"{FAILED.name}/{name}" for name in ("000000.json", "000001.json", "view.json")]
    described = services.storage.get_json(keys.result_view("local", job_id, FAILED.name))
    assert described["total"] == 12 and described["chunk"] == 7
    finalize_job(services, "local", job_id)  # finalised again (a redelivery): the same view
    assert _views(services, job_id) == written
    _pages_match(api, job_id, items, "failed")
    _pages_match(api, job_id, items, "ok")  # the many: the shard index, no view made for them
    assert _views(services, job_id) == written


def test_a_job_finalised_without_the_view_pages_its_failures_from_the_shard_index(
    local_settings: Settings, api: TestClient
) -> None:
    services = recording_resources(local_settings).services
    job_id, items = _finalised(services, items=61, fail_every=5)
    folder = keys.result_view("local", job_id, FAILED.name).rsplit("/", 2)[0] + "/"
    for name in _views(services, job_id):  # as an earlier version's finaliser left it
        services.storage.delete(folder + name)
    assert _views(services, job_id) == []
    _pages_match(api, job_id, items, "failed")
    assert _views(services, job_id) == []  # served without reading the whole job first


def test_a_view_of_half_the_job_is_dropped_and_never_built_on_request(
    local_settings: Settings, api: TestClient
) -> None:
    services = recording_resources(local_settings).services
    job_id, items = _finalised(services, items=60, fail_every=2)  # 30 of 60 failed: not under half
    assert sum(item["status"] == "failed" for item in items) == 30
    assert _views(services, job_id) == []  # the chunks written on the way were deleted
    _pages_match(api, job_id, items, "failed")
    _pages_match(api, job_id, items, "ok")
    assert _views(services, job_id) == []
