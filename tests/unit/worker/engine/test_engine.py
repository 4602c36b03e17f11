"""The job engine in one process: exactly-once manifests, broken members, redelivery, quarantine, cancel."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from shared import keys
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.queueing import SHARD_TASK
from shared.results import iter_shards, read_index
from shared.settings import Settings
from tests.support.images import png, tar_with_broken_members
from tests.support.runtime import recorded_batches, recording_resources, sent_tasks
from worker.engine.finalize import finalize_job
from worker.engine.inprocess import run_job_inprocess
from worker.engine.lifecycle import start_job
from worker.engine.shard import CANCELED_REASON, run_shard
from worker.pipelines.base import Item
from worker.pipelines.saliency_method import SaliencyPipeline
from worker.runtime.context import JobContext
from worker.runtime.resources import Resources

SPEC = {"kind": "saliency", "method": "spectral_residual"}


def submit(settings: Settings, archive: Path, spec: dict[str, Any] | None = None) -> tuple[Resources, str]:
    rt = recording_resources(settings)
    rt.services.storage.put_bytes(keys.upload("local", "u1", archive.name), archive.read_bytes())
    parsed = parse_spec({**(spec or SPEC), "input": "upload://u1"})
    record = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None)
    return rt, record.id


def test_whole_job_every_item_once_with_reasons(local_settings: Settings, tmp_path: Path) -> None:
    settings = local_settings.model_copy(update={"max_item_bytes": 1_000_000})
    archive = tmp_path / "in.tar"
    expected = tar_with_broken_members(archive, good=30, huge_bytes=1_500_000)
    rt, job_id = submit(settings, archive)
    services = rt.services
    run_job_inprocess(settings, "local", job_id)
    record = services.jobs.get("local", job_id)
    assert record.status == JobStatus.succeeded
    manifest = services.storage.get_json(keys.manifest("local", job_id))
    names = Counter(item["name"] for item in manifest["items"])
    assert sum(names.values()) == 30 + len(expected) == manifest["total"]
    assert all(count == 1 for count in names.values())
    by_name = {item["name"]: item for item in manifest["items"]}
    for name, phrase in expected.items():
        assert by_name[name]["status"] == "failed" and phrase in by_name[name]["error"], (name, by_name[name])
    ok = [item for item in manifest["items"] if item["status"] == "ok"]
    assert len(ok) == 30
    for item in ok:
        assert item["outputs"]["overlay"] == f"items/{item['index']:08d}/overlay.jpg"  # relative to the job's folder
        assert services.storage.get_bytes(keys.in_job("local", job_id, item["outputs"]["heatmap"])).startswith(
            b"\x89PNG"
        )
        boxes = services.storage.get_bytes(keys.in_job("local", job_id, item["outputs"]["boxes"]))
        assert boxes.startswith(b"\xff\xd8")  # a JPEG
        assert isinstance(item["boxes"], list) and all(len(box) == 6 for box in item["boxes"])
    report = services.storage.get_bytes(keys.report("local", job_id)).decode()
    assert "broken/bomb.png" in report and "data:image/jpeg;base64" in report
    assert 'alt="boxes"' in report and 'alt="objects"' in report  # the other pictures sit beside each overlay
    assert record.progress.done == 30 and record.progress.failed == len(expected)


def test_redelivered_shard_skips_finished_items_and_isolates_the_suspect(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = recorded_batches(monkeypatch)
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=12, huge_bytes=10)
    rt, job_id = submit(local_settings, archive)
    services = rt.services
    start_job(rt, "local", job_id)
    coordinator = services.coordinator
    shard0 = services.storage.get_json(keys.shard_entries("local", job_id, 0))["items"]
    first, suspect = shard0[0], shard0[3]
    # A previous delivery finished the first item, then died while item 3 was in flight.
    coordinator.record_items(
        job_id, {first[0]: {"index": first[0], "name": first[1], "status": "ok", "outputs": {}, "marker": 1}}
    )
    coordinator.begin_attempt(job_id, [suspect[0]])
    run_shard(rt, "local", job_id, 0)
    items = services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"]
    assert [i["index"] for i in items] == [e[0] for e in shard0]
    assert items[0].get("marker") == 1  # kept, not recomputed
    assert [suspect[0]] in batches  # the item in flight when the worker died ran alone
    assert all(suspect[0] not in batch for batch in batches if len(batch) > 1)
    assert all(first[0] not in batch for batch in batches)
    assert all(i["status"] == "ok" for i in items)
    # Delivered again after it finished: skipped, nothing changes.
    run_shard(rt, "local", job_id, 0)
    assert services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"] == items


def test_poison_item_is_quarantined(local_settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=4, huge_bytes=10)
    rt, job_id = submit(local_settings, archive)
    services = rt.services
    start_job(rt, "local", job_id)
    poison = services.storage.get_json(keys.shard_entries("local", job_id, 0))["items"][1]
    for _ in range(local_settings.max_deliveries):
        services.coordinator.begin_attempt(job_id, [poison[0]])
    run_shard(rt, "local", job_id, 0)
    items = {i["index"]: i for i in services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"]}
    assert items[poison[0]]["status"] == "failed" and "quarantined" in items[poison[0]]["error"]


def test_cancel_keeps_finished_items(local_settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=20, huge_bytes=10)
    rt, job_id = submit(local_settings, archive)
    services = rt.services
    start_job(rt, "local", job_id)
    shards = [args for name, args in sent_tasks(rt) if name == SHARD_TASK]
    run_shard(rt, *shards[0])
    services.jobs.transition("local", job_id, JobStatus.canceled, frozenset({"queued", "running"}))
    for args in shards[1:]:
        run_shard(rt, *args)
    finalize_job(services, "local", job_id)
    index = read_index(services.storage, "local", job_id)
    assert index is not None and index.final and index.planned
    items = [
        item for _shard, shard_items in iter_shards(services.storage, "local", job_id, index) for item in shard_items
    ]
    assert len(items) == index.total
    first = [
        i
        for i in items
        if i["index"] in {e[0] for e in services.storage.get_json(keys.shard_entries("local", job_id, 0))["items"]}
    ]
    assert all(
        i["status"] == "ok" and services.storage.exists(keys.in_job("local", job_id, i["outputs"]["heatmap"]))
        for i in first
    )
    assert any(i.get("error") == CANCELED_REASON for i in items)
    record = services.jobs.get("local", job_id)
    assert record.status == JobStatus.canceled
    assert services.storage.get_json(keys.summary("local", job_id))["status"] == "canceled"


def test_a_cancel_is_noticed_inside_a_batch(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=16, huge_bytes=10)
    rt, job_id = submit(local_settings, archive, {**SPEC, "batch_size": 8})
    services = rt.services
    start_job(rt, "local", job_id)
    written: list[str] = []
    original = JobContext.write

    def write(self: JobContext, item: Item, output: str, data: bytes, content_type: str) -> str:
        key = original(self, item, output, data, content_type)  # raises once the cancel is seen
        written.append(key)
        if len(written) == 1:  # the user cancels while the first batch is being written
            services.jobs.transition("local", job_id, JobStatus.canceled, frozenset({"queued", "running"}))
            time.sleep(0.6)  # past the cancel check's interval (it asks the coordinator every 0.5 s)
        return key

    monkeypatch.setattr(JobContext, "write", write)
    run_shard(rt, "local", job_id, 0)
    assert len(written) == 1  # the next write of the same batch was refused
    items = services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"]
    assert items and all(item["status"] == "failed" for item in items)
    assert {item["error"] for item in items if not item["name"].startswith("broken/")} == {CANCELED_REASON}


def test_model_based_methods_run_as_jobs(local_settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=3, huge_bytes=10)
    model = {"arch": "tiny_cnn", "num_classes": 4, "input_size": 32}
    for method in ("grad_cam", "integrated_gradients", "smoothgrad"):
        spec = {"kind": "saliency", "method": method, "model": model, "smoothgrad_samples": 2, "ig_steps": 4}
        rt, job_id = submit(local_settings, archive, spec)
        services = rt.services
        run_job_inprocess(local_settings, "local", job_id)
        manifest = services.storage.get_json(keys.manifest("local", job_id))
        ok = [item for item in manifest["items"] if item["status"] == "ok"]
        assert len(ok) == 4 and all(item["method"] == method and "predictions" in item for item in ok), method


def test_top_classes_units_and_signed_maps(local_settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=2, huge_bytes=10)
    model = {"arch": "tiny_cnn", "num_classes": 5, "input_size": 32}
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"target": {"top_k": 3}}, {"heatmap_rank1", "overlay_rank3"}),
        ({"target": {"layer": "features.4", "channel": 4}, "signed": True}, {"heatmap", "signed", "receptive_field"}),
        ({"target": 2, "signed": True, "raw_map": True}, {"heatmap", "signed", "raw_map"}),
        ({"target": {"layer": "features.4", "channel": [1, 3, 5]}}, {"heatmap_ch1", "overlay_ch5", "unit_grid"}),
    ]
    for extra, expected_outputs in cases:
        spec = {"kind": "saliency", "method": "gradient", "model": model, **extra}
        rt, job_id = submit(local_settings, archive, spec)
        services = rt.services
        run_job_inprocess(local_settings, "local", job_id)
        ok = [i for i in services.storage.get_json(keys.manifest("local", job_id))["items"] if i["status"] == "ok"]
        assert len(ok) == 3, extra
        for item in ok:
            assert expected_outputs <= set(item["outputs"]), (extra, item["outputs"].keys())
            if "top_k" in str(extra):
                assert [t["class"] for t in item["targets"]] == [p["class"] for p in item["predictions"][:3]]
            if "[1, 3, 5]" in str(extra):
                assert [u["channel"] for u in item["units"]] == [1, 3, 5]
                assert {"receptive_field_ch1", "receptive_field_ch3"} <= set(item["outputs"])
            elif "layer" in str(extra):
                unit = item["unit"]
                assert unit["channel"] == 4 and len(unit["position"]) == 2 and len(unit["receptive_field"]) == 4
            if extra.get("target") == 2:
                assert item["target"]["class"] == 2


@pytest.mark.parametrize("packed", [False, True], ids=["objects", "packed"])
def test_mean_map_over_the_job_is_exact_and_survives_a_rerun(
    local_settings: Settings, tmp_path: Path, packed: bool
) -> None:
    import io as _io

    import numpy as np
    import safetensors.torch

    from tests.support.images import tar_of
    from worker.inputs.decode import decode_image
    from worker.nets.tiny import TinyCNN
    from worker.nets.zoo import preprocess
    from worker.saliency.gradient import gradient_saliency

    torch.manual_seed(0)
    model = TinyCNN(3).eval()
    images = {f"{i}.png": png(seed=i, width=30 + i, height=20 + i) for i in range(11)}
    archive = tmp_path / "in.tar"
    tar_of(archive, images)
    weights = safetensors.torch.save(model.state_dict())
    spec = {
        "kind": "saliency",
        "method": "gradient",
        "batch_size": 4,
        "model": {"arch": "tiny_cnn", "weights": "upload://w", "num_classes": 3, "input_size": 32},
        "packed_outputs": packed,
    }
    rt, job_id = submit(local_settings, archive, spec)
    services = rt.services
    services.storage.put_bytes(keys.upload("local", "w", "m.safetensors"), weights)
    run_job_inprocess(local_settings, "local", job_id)
    summary = services.storage.get_json(keys.summary("local", job_id))
    mean = np.load(
        _io.BytesIO(services.storage.get_bytes(keys.in_job("local", job_id, summary["aggregate"]["mean_map"])))
    )
    decoded = [decode_image(data, max_pixels=10**8, max_bytes=10**8) for data in images.values()]
    inputs = preprocess([torch.from_numpy(d).permute(2, 0, 1) for d in decoded], 32, "imagenet", torch.device("cpu"))
    expected = gradient_saliency(model, inputs).maps.mean(dim=0).numpy()
    np.testing.assert_allclose(mean, expected, rtol=1e-4, atol=1e-7)
    sums = list(services.storage.list(keys.batch_sums_prefix("local", job_id)))
    assert len(sums) == (2 if packed else 3)  # 11 items, shards of 8, batches of 4: a segment's sums, or a batch's
    # A shard delivered again after its items were recorded adds nothing twice.
    services.storage.delete(keys.shard_manifest("local", job_id, 0))
    run_shard(rt, "local", job_id, 0)
    finalize_job(services, "local", job_id)
    again = np.load(
        _io.BytesIO(services.storage.get_bytes(keys.in_job("local", job_id, summary["aggregate"]["mean_map"])))
    )
    np.testing.assert_array_equal(again, mean)
    assert "Where the model looks" in services.storage.get_bytes(keys.report("local", job_id)).decode()


def test_per_item_arrays_are_assembled_row_by_item(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io as _io

    import numpy as np

    original = SaliencyPipeline.run_batch

    def with_vectors(self: SaliencyPipeline, items: list[Item]) -> list[Any]:
        outcomes = original(self, items)
        for item, outcome in zip(items, outcomes, strict=True):
            outcome.arrays["code"] = np.array([item.index, item.image.shape[0]], dtype=np.float32)
        return outcomes

    monkeypatch.setattr(SaliencyPipeline, "run_batch", with_vectors)
    archive = tmp_path / "in.tar"
    expected = tar_with_broken_members(archive, good=20, huge_bytes=10)
    rt, job_id = submit(local_settings, archive)
    run_job_inprocess(local_settings, "local", job_id)
    services = rt.services
    manifest = services.storage.get_json(keys.manifest("local", job_id))
    summary = services.storage.get_json(keys.summary("local", job_id))
    codes = np.load(_io.BytesIO(services.storage.get_bytes(keys.in_job("local", job_id, summary["arrays"]["code"]))))
    assert codes.shape == (20 + len(expected), 2)
    for item in manifest["items"]:
        if item["status"] == "ok":
            assert codes[item["index"], 0] == item["index"]
        else:
            assert np.isnan(codes[item["index"]]).all()


class _LabelsFile:
    """A sidecar reader for the test: ``labels.json`` maps image names to a label."""

    def __init__(self, _spec: object) -> None:
        self.labels: dict[str, str] = {}

    def claims(self, name: str) -> bool:
        return name.endswith("labels.json")

    def read(self, name: str, data: bytes) -> None:
        import json

        self.labels.update(json.loads(data))

    def finish(self, item_names: set[str]) -> None:
        from shared.errors import InvalidInput

        missing = sorted(set(self.labels) - item_names)
        if missing:
            raise InvalidInput(f"labels.json describes images that are not there: {missing}")

    def truth(self, item_name: str) -> dict[str, Any] | None:
        return {"label": self.labels[item_name]} if item_name in self.labels else None


def test_sidecar_members_become_the_truth_of_their_images(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import json

    from tests.support.images import tar_of
    from worker.engine import plan
    from worker.kinds import map_plugin

    plugin = dataclasses.replace(map_plugin("saliency"), sidecars=_LabelsFile)
    monkeypatch.setattr(plan, "map_plugin", lambda name: plugin)
    seen: dict[str, Any] = {}
    original = SaliencyPipeline.run_batch

    def recorded(self: SaliencyPipeline, items: list[Item]) -> list[Any]:
        seen.update({item.name: item.truth for item in items})
        return original(self, items)

    monkeypatch.setattr(SaliencyPipeline, "run_batch", recorded)
    images = {f"{i}.png": png(seed=i) for i in range(10)}
    archive = tmp_path / "in.tar"
    tar_of(archive, {**images, "meta/labels.json": json.dumps({"2.png": "cat", "7.png": "dog"}).encode()})
    rt, job_id = submit(local_settings, archive)
    run_job_inprocess(local_settings, "local", job_id)
    manifest = rt.services.storage.get_json(keys.manifest("local", job_id))
    assert manifest["total"] == 10 and all(item["status"] == "ok" for item in manifest["items"])
    assert seen["2.png"] == {"label": "cat"} and seen["7.png"] == {"label": "dog"} and seen["3.png"] is None
    # Describing an image the input lacks fails the job in planning, naming the file.
    tar_of(archive, {**images, "labels.json": json.dumps({"nope.png": "x"}).encode()})
    rt, job_id = submit(local_settings, archive)
    run_job_inprocess(local_settings, "local", job_id)
    record = rt.services.jobs.get("local", job_id)
    assert record.status.value == "failed" and "nope.png" in (record.error or "")


def test_a_store_outage_mid_batch_fails_no_item(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.errors import Retryable
    from worker.runtime.context import JobContext

    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=12, huge_bytes=10)
    rt, job_id = submit(local_settings, archive)
    start_job(rt, "local", job_id)
    original, calls = JobContext.write, {"n": 0, "down": True}

    def flaky(self: JobContext, *args: Any) -> str:
        calls["n"] += 1
        if calls["down"] and calls["n"] >= 5:  # the store goes away in the middle of a batch's outputs
            raise Retryable("writing: the store is unavailable (EndpointConnectionError)")
        return original(self, *args)

    monkeypatch.setattr(JobContext, "write", flaky)
    with pytest.raises(Retryable):
        run_shard(rt, "local", job_id, 0)
    assert not rt.services.storage.exists(keys.shard_manifest("local", job_id, 0))
    recorded = rt.services.coordinator.item_results(job_id, list(range(100)))
    assert all(result["status"] == "ok" for index, result in recorded.items() if "outputs" in result)
    calls["down"] = False
    run_shard(rt, "local", job_id, 0)  # the task's next try, once the store is back
    items = rt.services.storage.get_json(keys.shard_manifest("local", job_id, 0))["items"]
    assert items and all(item["status"] == "ok" for item in items), [i.get("error") for i in items]
