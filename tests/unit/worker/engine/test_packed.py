"""Packed outputs: one tar per shard (members INDEX.NAME.EXT) holding what per-item objects would hold, byte
for byte, through the API's signed range route, the pack itself and ``fovea results``; and every item
exactly once when a shard dies or the store fails between storing a pack and recording its items."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli.client import Client
from shared import keys
from shared.errors import Retryable
from shared.kinds import parse_spec
from shared.packs import parse_ref
from shared.queueing import SHARD_TASK
from shared.settings import Settings
from tests.support.images import tar_with_broken_members
from tests.support.runtime import recording_resources, sent_tasks
from worker.engine.finalize import finalize_job
from worker.engine.inprocess import run_job_inprocess
from worker.engine.lifecycle import start_job
from worker.engine.shard import run_shard
from worker.pipelines.base import Item
from worker.pipelines.saliency_method import SaliencyPipeline
from worker.runtime.resources import Resources

SPEC = {"kind": "saliency", "method": "spectral_residual", "batch_size": 2}


def _job(settings: Settings, archive: Path, packed: bool) -> tuple[Resources, str]:
    rt = recording_resources(settings)
    rt.services.storage.put_bytes(keys.upload("local", "u1", archive.name), archive.read_bytes())
    spec = parse_spec({**SPEC, "input": "upload://u1", "packed_outputs": packed})
    return rt, rt.services.jobs.create("local", spec.kind, spec.model_dump(mode="json"), None).id


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_packed_outputs_hold_what_objects_would(local_settings: Settings, tmp_path: Path) -> None:
    settings = local_settings.model_copy(update={"max_item_bytes": 1_000_000, "shard_items": 6})
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=15, huge_bytes=1_500_000)
    rt, plain = _job(settings, archive, packed=False)
    run_job_inprocess(settings, "local", plain)
    rt, packed = _job(settings, archive, packed=True)
    run_job_inprocess(settings, "local", packed)
    store = rt.services.storage
    objects = [info.key for info in store.list(keys.job_prefix("local", packed))]
    packs = [key for key in objects if "/packs/" in key]
    shards = store.get_json(keys.plan("local", packed))["shards"]
    # At most a pack a shard (none for a shard of broken members only): O(shards) objects, not O(items).
    assert 0 < len(packs) <= shards and not any("/items/" in key for key in objects)
    plain_items = store.get_json(keys.manifest("local", plain))["items"]
    packed_items = store.get_json(keys.manifest("local", packed))["items"]
    assert [(i["name"], i["status"]) for i in plain_items] == [(i["name"], i["status"]) for i in packed_items]
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as api:
        page = api.get(f"/v1/jobs/{packed}/results", params={"limit": 1000}).json()
        seen_members: dict[str, set[str]] = {}
        for item, reference in zip(page["items"], plain_items, strict=True):
            assert set(item["outputs"]) == set(reference.get("outputs", {}))
            for name, url in item["outputs"].items():
                expected = store.get_bytes(keys.in_job("local", plain, reference["outputs"][name]))
                assert api.get(url).content == expected, (item["name"], name)  # the signed range route
                ref = parse_ref(item["packed"][name])
                assert ref is not None and ref.member == f"{item['index']:08d}.{Path(reference['outputs'][name]).name}"
                seen_members.setdefault(ref.pack, set()).add(ref.member)
        for pack, url in page["packs"].items():  # each pack whole: a tar of INDEX.NAME.EXT members
            with tarfile.open(fileobj=io.BytesIO(api.get(url).content)) as tar:
                assert set(tar.getnames()) == seen_members[pack]
        # A signature is for one pack of one job: changed, or used for another pack, it is refused.
        urls = [url for item in page["items"] for url in item["outputs"].values()]
        path, query = urls[0].split("?")
        other = next(url.split("?")[0] for url in urls if url.split("?")[0] != path)
        assert api.get(f"{other}?{query}").status_code == 403
        signature = query.split("signature=")[1].split("&")[0]
        assert api.get(urls[0].replace(signature, signature[::-1])).status_code == 403
        assert api.get(urls[0].replace("expires=", "expires=1")).status_code == 403
        # fovea results: the same folder from packs as from objects.
        client = Client(url="http://127.0.0.1:8000")
        client.http = client.files = api
        client.download(plain, tmp_path / "plain")
        client.download(packed, tmp_path / "packed")
    plain_files, packed_files = _files(tmp_path / "plain"), _files(tmp_path / "packed")
    assert len([k for k in plain_files if k.startswith("items/")]) == 15 * 5  # four outputs and a thumbnail each
    items_only = {k: v for k, v in plain_files.items() if k.startswith("items/")}
    assert {k: v for k, v in packed_files.items() if k.startswith("items/")} == items_only
    assert not (tmp_path / "packed" / ".packs").exists()  # the scratch packs are gone
    report = store.get_bytes(keys.report("local", packed)).decode()
    assert report.count("data:image/jpeg;base64") == plain_files["report.html"].decode().count("data:image/jpeg;base64")


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs (not an item's failure)."""


def test_every_item_once_when_shards_die_or_the_store_fails_between_pack_and_record(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = local_settings.model_copy(update={"shard_items": 8, "max_deliveries": 3})
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=12, huge_bytes=10)
    rt, job_id = _job(settings, archive, packed=True)
    services = rt.services
    start_job(rt, "local", job_id)
    shard = next(args for name, args in sent_tasks(rt) if name == SHARD_TASK)
    entries = services.storage.get_json(keys.shard_entries("local", job_id, 0))["items"]
    poison = next(index for index, name, *_ in entries if name == "good/img0005.png")
    runs: list[list[int]] = []
    original = SaliencyPipeline.run_batch

    def deadly(self: SaliencyPipeline, items: list[Item]) -> list[Any]:
        runs.append([item.index for item in items])
        if any(item.index == poison for item in items):
            raise WorkerDied  # every time the poison runs, its worker dies
        return original(self, items)

    monkeypatch.setattr(SaliencyPipeline, "run_batch", deadly)
    deaths = 0
    for _ in range(settings.max_deliveries + 2):
        try:
            run_shard(rt, *shard)
            break
        except WorkerDied:
            deaths += 1
    assert deaths == settings.max_deliveries  # then the poison is quarantined, and the shard finishes
    items = services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"]
    by_index = {item["index"]: item for item in items}
    assert "quarantined" in by_index[poison]["error"]
    quarantined = [item for item in items if "quarantined" in (item.get("error") or "")]
    assert quarantined == [by_index[poison]]  # items that ran beside it earlier are not suspects for ever
    assert sum(1 for item in items if item["status"] == "ok") == 7
    assert any(len(batch) > 1 for batch in runs[-3:])  # after the deaths, innocent items run batched again

    # The store fails after a pack is stored and before its items are recorded: the next run writes another
    # pack; the finaliser keeps only the packs the manifest points into.
    monkeypatch.setattr(SaliencyPipeline, "run_batch", original)
    shard1 = [args for name, args in sent_tasks(rt) if name == SHARD_TASK][1]
    record = services.coordinator.record_items
    failures = iter([True])

    def flaky(job: str, results: dict[int, dict[str, Any]]) -> list[int]:
        if any("packs/" in str(r.get("outputs")) for r in results.values()) and next(failures, False):
            raise Retryable("store timeout")
        return record(job, results)

    monkeypatch.setattr(services.coordinator, "record_items", flaky)
    with pytest.raises(Retryable):
        run_shard(rt, *shard1)
    run_shard(rt, *shard1)
    assert len(list(services.storage.list(keys.packs_prefix("local", job_id) + "000001/"))) == 2
    for args in [args for name, args in sent_tasks(rt) if name == SHARD_TASK][2:]:
        run_shard(rt, *args)
    finalize_job(services, "local", job_id)
    manifest = services.storage.get_json(keys.manifest("local", job_id))["items"]
    assert [item["index"] for item in manifest] == list(range(len(manifest)))
    used = {ref.pack for item in manifest for path in item.get("outputs", {}).values() if (ref := parse_ref(path))}
    stored = {
        keys.relative_to_job("local", job_id, i.key) for i in services.storage.list(keys.packs_prefix("local", job_id))
    }
    assert stored == used and len([pack for pack in stored if pack.startswith("packs/000001/")]) == 1
    assert sum(1 for item in manifest if item["status"] == "ok") == 12  # 11 good, and broken/huge.png (10 bytes over)
    for item in manifest:
        for path in item.get("outputs", {}).values():
            ref = parse_ref(path)
            assert ref is not None
            with services.storage.open(keys.in_job("local", job_id, ref.pack), ref.offset, ref.size) as stream:
                assert len(stream.read()) == ref.size > 0
