"""Planning in bounded steps: an input planned a shard a step gives the job that one step gives, item for
item (names, order, per-item errors), for every format; the item limit holds across steps; and the
members are the ones the archive library reads (the reference)."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from shared import keys
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.queueing import FINALIZE_TASK, SHARD_TASK
from shared.settings import Settings
from tests.support.images import add_bytes, jpeg, png, tar_with_broken_members
from tests.support.runtime import recording_resources
from worker.engine.finalize import finalize_job
from worker.engine.inprocess import run_job_inprocess
from worker.engine.lifecycle import start_job
from worker.engine.shard import run_shard
from worker.inputs.archive import iter_members
from worker.runtime.resources import Resources

SPEC = {"kind": "saliency", "method": "spectral_residual"}


def _archive(tmp_path: Path, fmt: str) -> Path:
    """An archive with good images and broken members of every kind the format can hold."""
    plain = tmp_path / "in.tar"
    tar_with_broken_members(plain, good=13, huge_bytes=1_500_000)
    if fmt == "tar":
        return plain
    if fmt == "tar.gz":
        packed = tmp_path / "in.tar.gz"
        packed.write_bytes(gzip.compress(plain.read_bytes()))
        return packed
    path = tmp_path / "in.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(13):
            method = zipfile.ZIP_DEFLATED if i % 3 else zipfile.ZIP_STORED
            archive.writestr(f"good/{i:03d}.png", png(seed=i), compress_type=method)
        archive.writestr("folder/", b"")
        archive.writestr("broken/zero.png", b"")
        archive.writestr("broken/notes.txt", b"not pixels\n" * 20, compress_type=zipfile.ZIP_BZIP2)
        archive.writestr("../escape.png", png(seed=50))
        archive.writestr("big/huge.png", png(seed=51) + b"\x00" * 1_500_000, compress_type=zipfile.ZIP_LZMA)
        archive.writestr("__MACOSX/._junk", b"resource fork")
        archive.writestr("good/last.jpg", jpeg(seed=52))
    return path


def _run(settings: Settings, archive: Path, spec: dict[str, Any] | None = None) -> tuple[Resources, str]:
    rt = recording_resources(settings)
    rt.services.storage.put_bytes(keys.upload("local", "u1", archive.name), archive.read_bytes())
    parsed = parse_spec({**(spec or SPEC), "input": "upload://u1"})
    job_id = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None).id
    run_job_inprocess(settings, "local", job_id)
    return rt, job_id


@pytest.mark.parametrize(("fmt", "source"), [("tar", "range"), ("tar.gz", "tar"), ("zip", "zip")])
def test_a_shard_a_step_plans_the_job_one_step_plans(
    local_settings: Settings, tmp_path: Path, fmt: str, source: str
) -> None:
    archive = _archive(tmp_path, fmt)
    base = local_settings.model_copy(update={"max_item_bytes": 1_000_000, "shard_items": 3})
    rt, whole = _run(base.model_copy(update={"plan_step_s": 3600.0}), archive)
    stepped_settings = base.model_copy(update={"plan_step_s": 0.0, "data_dir": tmp_path / "stepped"})
    rt_stepped, stepped = _run(stepped_settings, archive)
    store, stepped_store = rt.services.storage, rt_stepped.services.storage
    one = store.get_json(keys.plan("local", whole))
    many = stepped_store.get_json(keys.plan("local", stepped))
    assert one["step"] == 1 and one["complete"]
    assert many["step"] >= many["shards"] > 4 and many["complete"]  # a shard a step (and one that finds the end)
    assert one["starts"] == many["starts"] and one["total"] == many["total"]
    assert stepped_store.get_json(keys.shard_entries("local", stepped, 0))["source"] == source
    items = store.get_json(keys.manifest("local", whole))["items"]
    assert stepped_store.get_json(keys.manifest("local", stepped))["items"] == items
    assert rt_stepped.services.jobs.get("local", stepped).status == JobStatus.succeeded
    # The members, in order, with the reasons the archive library's reading gives.
    with archive.open("rb") as stream:
        reference = list(iter_members(stream, archive.name, max_bytes=1_000_000))
    assert [item["name"] for item in items] == [member.name for member in reference]
    for item, member in zip(items, reference, strict=True):
        if member.error is not None:
            assert item["status"] == "failed" and item["error"] == member.error, (item, member)
    assert sum(1 for item in items if item["status"] == "ok") == 14 if fmt == "zip" else 13


def test_the_item_limit_holds_across_steps(local_settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "in.tar"
    with __import__("tarfile").open(archive, "w") as tar:
        for i in range(12):
            add_bytes(tar, f"{i:02d}.png", png(seed=i))
    settings = local_settings.model_copy(update={"plan_step_s": 0.0, "shard_items": 3, "max_items_per_job": 7})
    rt, job_id = _run(settings, archive)
    record = rt.services.jobs.get("local", job_id)
    assert record.status == JobStatus.failed and "FOVEA_MAX_ITEMS_PER_JOB" in (record.error or "")
    # What was planned before the limit was met is finalised: every planned item once, none pending.
    manifest = rt.services.storage.get_json(keys.manifest("local", job_id))
    assert [item["index"] for item in manifest["items"]] == list(range(6)) == list(range(manifest["total"]))
    assert all(item["status"] in ("ok", "failed") for item in manifest["items"])


def test_a_prefix_plans_from_the_last_key(local_settings: Settings, tmp_path: Path, moto_endpoint: str) -> None:
    from shared.storage import open_storage
    from tests.support.s3 import new_bucket

    store_bucket, input_bucket = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    s3 = {"s3_endpoint_url": moto_endpoint, "s3_access_key_id": "testing", "s3_secret_access_key": "testing"}
    settings = local_settings.model_copy(
        update={"storage_url": f"s3://{store_bucket}", "shard_items": 2, "max_item_bytes": 100_000, **s3}
    )
    photos = open_storage(settings, bucket=input_bucket)
    for i in range(7):
        photos.put_bytes(f"photos/{i:02d}.png", png(seed=i))
    photos.put_bytes("photos/big.png", png(seed=9) + b"\x00" * 200_000)
    photos.put_bytes("elsewhere/x.png", png(seed=10))
    spec = {**SPEC, "input": f"s3://{input_bucket}/photos/"}
    manifests = []
    for step_s in (3600.0, 0.0):
        rt = recording_resources(settings.model_copy(update={"plan_step_s": step_s}))
        parsed = parse_spec(spec)
        job_id = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None).id
        run_job_inprocess(settings.model_copy(update={"plan_step_s": step_s}), "local", job_id)
        manifests.append(rt.services.storage.get_json(keys.manifest("local", job_id))["items"])
        steps = rt.services.storage.get_json(keys.plan("local", job_id))["step"]
        assert steps == 1 if step_s else steps >= 4
    assert manifests[0] == manifests[1]
    assert [item["name"] for item in manifests[0]] == [f"{i:02d}.png" for i in range(7)] + ["big.png"]
    assert "over the limit" in manifests[0][-1]["error"]


def test_an_input_read_in_parts_is_never_held_whole(local_settings: Settings, tmp_path: Path) -> None:
    """A plain tar's shards are byte ranges of the upload: nothing is copied, and each shard reads its own."""
    archive = _archive(tmp_path, "tar")
    settings = local_settings.model_copy(update={"max_item_bytes": 1_000_000, "shard_items": 4, "plan_step_s": 0.0})
    rt, job_id = _run(settings, archive)
    store = rt.services.storage
    assert not any(info.key.endswith(".tar") for info in store.list(keys.job_prefix("local", job_id) + "inputs/"))
    data = archive.read_bytes()
    entry = store.get_json(keys.shard_entries("local", job_id, 1))
    for _index, name, offset, size in entry["items"]:
        with io.BytesIO(data) as stream:
            member = next(m for m in iter_members(stream, "in.tar", max_bytes=10**7) if m.name == name)
        assert data[offset : offset + size] == member.data


def test_shards_that_end_before_planning_stores_its_plan_end_the_job_once(
    local_settings: Settings, tmp_path: Path
) -> None:
    """Planning on another worker (a control worker) sends each shard as it is planned, so a shard can end
    before planning's step has stored the plan: it counts as still planning (its tail does not fail and
    run the shard again), and planning's end sends the finaliser."""
    settings = local_settings.model_copy(update={"shard_items": 4})
    archive = _archive(tmp_path, "tar")
    later: deque[tuple[str, tuple[Any, ...]]] = deque()
    ran: list[int] = []

    def enqueue(name: str, args: tuple[Any, ...]) -> None:
        if name != SHARD_TASK:
            later.append((name, args))
            return
        assert not rt.services.storage.exists(keys.plan("local", job_id))  # planning's step has not ended
        run_shard(rt, *args)  # another worker takes it at once
        ran.append(int(args[2]))

    rt = Resources.create(settings, enqueue)
    rt.services.storage.put_bytes(keys.upload("local", "u1", archive.name), archive.read_bytes())
    parsed = parse_spec({**SPEC, "input": "upload://u1"})
    job_id = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None).id
    start_job(rt, "local", job_id)
    plan = rt.services.storage.get_json(keys.plan("local", job_id))
    assert plan["complete"] and ran == list(range(plan["shards"])) and plan["shards"] > 1
    assert [name for name, _ in later] == [FINALIZE_TASK]  # sent once, by planning's end
    finalize_job(rt.services, *later[0][1])
    record = rt.services.jobs.load("local", job_id)
    items = rt.services.storage.get_json(keys.manifest("local", job_id))["items"]
    assert record.status == JobStatus.succeeded
    assert [item["index"] for item in items] == list(range(plan["total"]))
    assert record.progress.done + record.progress.failed == plan["total"]
