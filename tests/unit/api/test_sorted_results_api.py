"""Sorted and class-filtered results pages: at any offset and size, a page is the slice of the job's
items filtered and sorted in memory (the reference: Python's sorted over the whole manifest), read from a
view the first page built; views are for ended jobs only, and another tenant never reaches one."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared import keys, result_views
from shared.results import ShardIndex, iter_shards
from shared.settings import Settings
from shared.storage import open_storage
from tests.support.runtime import recording_resources
from tests.support.synthetic_jobs import ended_job


@pytest.fixture
def api(local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(result_views, "CHUNK", 7)  # pages across chunk boundaries
    with TestClient(create_app(local_settings), base_url="http://127.0.0.1:8000") as client:
        yield client


def _reference(items: list[dict[str, Any]], status: str | None, label: str | None, sort: str | None) -> list[int]:
    """Filter and sort directly: present values by value (descending with '-'), missing last, ties by index."""
    chosen = [i for i in items if status is None or i["status"] == status]
    if label is not None:
        chosen = [i for i in chosen if label in {str(i.get("target", {}).get(k)) for k in ("class", "name")}]
    if sort is None:
        return [i["index"] for i in chosen]
    path = sort.removeprefix("-")

    def value(item: dict[str, Any]) -> float | None:
        return result_views.numeric(item, path)

    present = [i for i in chosen if value(i) is not None]
    missing = [i for i in chosen if value(i) is None]
    sign = -1 if sort.startswith("-") else 1
    present = sorted(present, key=lambda i: (sign * (value(i) or 0.0), i["index"]))
    return [i["index"] for i in present + missing]


def test_sorted_and_filtered_pages_are_slices_of_the_reference_order(local_settings: Settings, api: TestClient) -> None:
    rt = recording_resources(local_settings)
    store = rt.services.storage
    job_id = ended_job(store, rt.services.jobs, "local", items=61, shard_items=9, fail_every=5)
    index = ShardIndex(61, list(range(0, 61, 9)), True, True, {})
    items = [item for _shard, rows in iter_shards(store, "local", job_id, index) for item in rows]
    # Ties: give a few items the same value, so that the stable order is checked too.
    cases = [
        (None, None, "quality.deletion_auc"),
        ("ok", None, "-predictions.0.probability"),
        (None, "square", "-quality.deletion_auc"),
        (None, "2", None),
        ("failed", None, "quality.deletion_auc"),  # nobody has the field: index order
        (None, None, "quality.pointing_hit"),  # booleans count as 0 and 1: many ties
    ]
    for status, label, sort in cases:
        want = _reference(items, status, label, sort)
        for limit in (1, 5, 7, 20, 100):
            for offset in (0, 1, 6, 7, 13, len(want) - 1, len(want), len(want) + 3):
                params = {"offset": offset, "limit": limit, "sort": sort, "class": label, "status": status}
                page = api.get(f"/v1/jobs/{job_id}/results", params={k: v for k, v in params.items() if v is not None})
                assert page.status_code == 200, page.text
                body = page.json()
                got = [i["index"] for i in body["items"]]
                assert got == want[max(offset, 0) : offset + limit], (status, label, sort, offset, limit)
                assert body["total"] == len(want) and body["sort"] == sort and body["label"] == label
                more = bool(got) and offset + len(got) < len(want)
                assert body["next_offset"] == (offset + len(got) if more else None)
    sorted_page = api.get(f"/v1/jobs/{job_id}/results", params={"sort": "-quality.deletion_auc", "limit": 3}).json()
    values = [i["data"]["quality"]["deletion_auc"] for i in sorted_page["items"]]
    assert values == sorted(values, reverse=True) and not any(math.isnan(v) for v in values)


def test_a_view_is_built_once_and_then_read_a_chunk_at_a_time(local_settings: Settings, api: TestClient) -> None:
    rt = recording_resources(local_settings)
    store = rt.services.storage
    job_id = ended_job(store, rt.services.jobs, "local", items=40, shard_items=10)
    first = api.get(f"/v1/jobs/{job_id}/results", params={"sort": "quality.deletion_auc", "limit": 5}).json()
    for shard in range(4):  # the shard manifests are no longer needed for this view
        store.delete(keys.shard_manifest("local", job_id, shard))
    again = api.get(f"/v1/jobs/{job_id}/results", params={"sort": "quality.deletion_auc", "offset": 30}).json()
    assert len(first["items"]) == 5 and len(again["items"]) == first["total"] - 30 > 0


def test_sorting_a_running_job_is_a_conflict_and_bad_fields_are_named(
    local_settings: Settings, api: TestClient
) -> None:
    rt = recording_resources(local_settings)
    job = api.post("/v1/jobs", json={"kind": "saliency", "method": "spectral_residual", "input": "builtin:shapes"})
    assert job.status_code == 201, job.text
    running = api.get(f"/v1/jobs/{job.json()['id']}/results", params={"sort": "quality.deletion_auc"})
    assert running.status_code == 409 and "ended" in running.json()["error"]["message"]
    job_id = ended_job(rt.services.storage, rt.services.jobs, "local", items=5, shard_items=5)
    bad = api.get(f"/v1/jobs/{job_id}/results", params={"sort": "quality..x"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "sort"


def test_views_are_the_tenants_own(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_keys="key-a=alice,key-b=bob", signing_secret="s")
    store = open_storage(settings)
    rt = recording_resources(settings)
    job_id = ended_job(store, rt.services.jobs, "alice", items=20, shard_items=10)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        params = {"sort": "-quality.deletion_auc"}
        mine = client.get(f"/v1/jobs/{job_id}/results", params=params, headers={"Authorization": "Bearer key-a"})
        theirs = client.get(f"/v1/jobs/{job_id}/results", params=params, headers={"Authorization": "Bearer key-b"})
    assert mine.status_code == 200 and mine.json()["total"] == 20
    assert theirs.status_code == 404
