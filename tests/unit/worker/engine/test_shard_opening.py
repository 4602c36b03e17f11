"""Opening a shard: its items are read and decoded while the coordinator is still being asked which are left
to do; whatever was finished before is decoded at most, never run again, and (object-store keys) never
fetched."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Any

import pytest

from shared import keys
from shared.kinds import parse_spec
from shared.settings import Settings
from shared.storage.s3 import S3Storage
from tests.support.images import png, tar_with_broken_members
from tests.support.runtime import recorded_batches, recording_resources
from worker.engine import shard_items
from worker.engine.lifecycle import start_job
from worker.engine.shard import run_shard
from worker.runtime.resources import Resources

SPEC = {"kind": "saliency", "method": "spectral_residual"}


def _planned(rt: Resources, input_uri: str) -> str:
    parsed = parse_spec({**SPEC, "input": input_uri})
    job_id = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None).id
    start_job(rt, "local", job_id)
    return job_id


def _finish_first_item(rt: Resources, job_id: str, shard: int) -> list[Any]:
    """A previous delivery finished the shard's first item; the shard's entries."""
    entries = rt.services.storage.get_json(keys.shard_entries("local", job_id, shard))["items"]
    index, name = entries[0][0], entries[0][1]
    done = {"index": index, "name": name, "status": "ok", "outputs": {}, "marker": 1}
    rt.services.coordinator.record_items(job_id, {index: done})
    return list(entries)


@pytest.mark.parametrize("fmt", ["tar", "tar.gz"])  # read by byte range, and from the repacked shard
def test_items_are_decoded_during_the_bookkeeping_and_what_was_finished_does_not_run_again(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    plain = tmp_path / "in.tar"
    tar_with_broken_members(plain, good=12, huge_bytes=10)
    data = plain.read_bytes() if fmt == "tar" else gzip.compress(plain.read_bytes())
    rt = recording_resources(local_settings)
    rt.services.storage.put_bytes(keys.upload("local", "u1", f"in.{fmt}"), data)
    job_id = _planned(rt, "upload://u1")
    entries = _finish_first_item(rt, job_id, 0)
    batches = recorded_batches(monkeypatch)
    decoded = threading.Event()
    decode = shard_items.decode_image

    def decode_and_tell(*args: Any, **kwargs: Any) -> Any:
        decoded.set()
        return decode(*args, **kwargs)

    monkeypatch.setattr(shard_items, "decode_image", decode_and_tell)
    coordinator = rt.services.coordinator
    ask = coordinator.item_states
    decoded_before_the_answer: list[bool] = []

    def slow_answer(job: str, indices: list[int]) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
        decoded_before_the_answer.append(decoded.wait(10))  # the reader does not wait for the answer
        return ask(job, indices)

    monkeypatch.setattr(coordinator, "item_states", slow_answer)
    run_shard(rt, "local", job_id, 0)
    assert decoded_before_the_answer == [True]
    items = rt.services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"]
    assert [item["index"] for item in items] == [row[0] for row in entries]  # every item once
    assert items[0]["marker"] == 1  # the finished item kept, not recomputed
    assert all(entries[0][0] not in batch for batch in batches)
    assert sorted(i for batch in batches for i in batch) == [row[0] for row in entries[1:] if row[0] in _ok(items)]


def _ok(items: list[dict[str, Any]]) -> set[int]:
    return {int(item["index"]) for item in items if item["status"] == "ok"}


def test_keys_already_finished_are_never_fetched(
    local_settings: Settings, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.storage import open_storage
    from tests.support.s3 import new_bucket

    store_bucket, input_bucket = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    s3 = {"s3_endpoint_url": moto_endpoint, "s3_access_key_id": "testing", "s3_secret_access_key": "testing"}
    settings = local_settings.model_copy(update={"storage_url": f"s3://{store_bucket}", "shard_items": 4, **s3})
    photos = open_storage(settings, bucket=input_bucket)
    for i in range(4):
        photos.put_bytes(f"photos/{i:02d}.png", png(seed=i))
    rt = recording_resources(settings)
    job_id = _planned(rt, f"s3://{input_bucket}/photos/")
    entries = _finish_first_item(rt, job_id, 0)
    fetched: list[str] = []
    get = S3Storage.get_bytes

    def fetch(self: S3Storage, key: str) -> bytes:
        fetched.append(key)
        return get(self, key)

    monkeypatch.setattr(S3Storage, "get_bytes", fetch)
    run_shard(rt, "local", job_id, 0)
    assert entries[0][2] not in fetched and all(row[2] in fetched for row in entries[1:])
    items = rt.services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"]
    assert [item["index"] for item in items] == [0, 1, 2, 3] and items[0]["marker"] == 1


def test_a_worker_reads_a_jobs_record_once_for_all_its_shards(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "in.tar"
    tar_with_broken_members(plain, good=20, huge_bytes=10)
    rt = recording_resources(local_settings)
    rt.services.storage.put_bytes(keys.upload("local", "u1", "in.tar"), plain.read_bytes())
    job_id = _planned(rt, "upload://u1")
    shards = rt.services.storage.get_json(keys.plan("local", job_id))["shards"]
    record, read = keys.job_record("local", job_id), rt.services.storage.get_bytes
    reads: list[str] = []
    monkeypatch.setattr(rt.services.storage, "get_bytes", lambda key: (reads.append(key), read(key))[1])
    for shard in range(shards):
        run_shard(rt, "local", job_id, shard)
    assert shards >= 3 and reads.count(record) == 1
    assert rt.services.coordinator.progress(job_id).shards_done == shards  # type: ignore[union-attr]
