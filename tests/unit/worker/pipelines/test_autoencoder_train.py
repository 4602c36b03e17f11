"""autoencoder_train and autoencoder_apply as jobs, in-process on local storage: train on a small MNIST
subset, then apply the model to an archive (codes in one .npy, reconstructions, errors ranked, the 2-D map
from the training-time projection); broken members and unusable inputs; attribute sidecars."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from shared import keys
from shared.errors import InvalidInput
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.settings import Settings
from tests.support.contexts import RecordingTrainingContext, tar_bytes
from tests.support.runtime import recording_resources
from worker.engine.inprocess import run_job_inprocess
from worker.inputs.mnist import load_mnist
from worker.kinds import training_plugin
from worker.pipelines.autoencoder_analysis import Projection
from worker.runtime.resources import Resources


@pytest.fixture
def settings(local_settings: Settings, assets_dir: Path) -> Settings:
    return local_settings.model_copy(update={"assets_dir": assets_dir})


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def submit(settings: Settings, spec: dict[str, Any]) -> tuple[Resources, str]:
    rt = recording_resources(settings)
    parsed = parse_spec(spec)
    return rt, rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None).id


def run(settings: Settings, spec: dict[str, Any]) -> tuple[Resources, str]:
    rt, job_id = submit(settings, spec)
    run_job_inprocess(settings, "local", job_id)
    return rt, job_id


def upload(rt: Resources, upload_id: str, members: dict[str, bytes]) -> str:
    rt.services.storage.put_bytes(keys.upload("local", upload_id, "in.tar"), tar_bytes(members))
    return f"upload://{upload_id}"


def test_train_on_mnist_then_apply_to_an_archive(settings: Settings, assets_dir: Path, tmp_path: Path) -> None:
    spec = {
        "kind": "autoencoder_train",
        "input": "builtin:mnist",
        "train_items": 1500,
        "test_items": 300,
        "epochs": 5,
        "batch_size": 64,
        "step_seconds": 1,
    }
    rt, train_id = run(settings, spec)
    storage = rt.services.storage
    record = rt.services.jobs.get("local", train_id)
    assert record.status == JobStatus.succeeded, record.error
    summary = storage.get_json(keys.summary("local", train_id))
    assert summary["test_loss"] < 0.25 and summary["epochs"] == 5 and summary["code_size"] == 32, summary
    files = storage.get_json(keys.job_files_index("local", train_id))
    for name in ("curves.png", "reconstructions.png", "code_map.png", "samples.png", "model", "config"):
        assert name in files, files
    assert storage.get_bytes(keys.in_job("local", train_id, files["code_map.png"])).startswith(b"\x89PNG")
    config = storage.get_json(keys.model_config("local", train_id))
    assert config["model_type"] == "autoencoder" and config["projection"]["method"] == "pca"
    assert "test loss" in storage.get_bytes(keys.report("local", train_id)).decode()

    # An archive of test digits in class folders, four noise images and a broken member.
    digits, labels = load_mnist(assets_dir, tmp_path / "mnist", False)
    members = {f"{labels[i]}/{i:04d}.png": _png(digits[i]) for i in range(5000, 5030)}
    rng = np.random.default_rng(0)
    noise = {f"noise/{i}.png": _png(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for i in range(4)}
    members |= noise | {"broken/x.png": b"not a png"}
    uri = upload(rt, "a1", members)
    rt, apply_id = run(
        settings, {"kind": "autoencoder_apply", "input": uri, "model": {"job": train_id}, "anomalies": 6}
    )
    storage = rt.services.storage
    manifest = storage.get_json(keys.manifest("local", apply_id))
    items = {item["name"]: item for item in manifest["items"]}
    assert manifest["total"] == 35 and items["broken/x.png"]["status"] == "failed"
    ok = [item for item in manifest["items"] if item["status"] == "ok"]
    assert len(ok) == 34 and all(set(item["outputs"]) == {"input", "reconstruction", "thumb"} for item in ok)
    summary = storage.get_json(keys.summary("local", apply_id))
    ranked = [entry["name"] for entry in summary["most_anomalous"]]
    assert set(ranked[:4]) == set(noise), ranked  # noise is what a digit model reconstructs worst
    errors = [entry["reconstruction_error"] for entry in summary["most_anomalous"]]
    assert errors == sorted(errors, reverse=True) and len(errors) == 6
    assert {"code_map.png", "most_anomalous.png"} <= set(summary["pictures"]), summary["pictures"]
    # The embeddings, in one line each; row i is item i (NaN for the failed one).
    codes = np.load(io.BytesIO(storage.get_bytes(keys.in_job("local", apply_id, summary["arrays"]["code"]))))
    mapped = np.load(io.BytesIO(storage.get_bytes(keys.in_job("local", apply_id, summary["arrays"]["map_2d"]))))
    assert codes.shape == (35, 32) and mapped.shape == (35, 2)
    broken = items["broken/x.png"]["index"]
    assert np.isnan(codes[broken]).all() and np.isfinite(np.delete(codes, broken, axis=0)).all()
    projection = Projection.from_config(config["projection"])
    for item in ok:
        assert np.allclose(mapped[item["index"]], item["map_2d"], atol=1e-4)
        assert np.allclose(projection(codes[item["index"]][None])[0], item["map_2d"], atol=1e-4)
        assert item["label"] == item["name"].split("/")[0]
    page = storage.get_bytes(keys.report("local", apply_id)).decode()
    assert "Most anomalous" in page and "noise/0.png" in page
    # A per-item result does not depend on its batch: one image per batch gives the same codes.
    rt, single_id = run(
        settings, {"kind": "autoencoder_apply", "input": uri, "model": {"job": train_id}, "batch_size": 1}
    )
    alone = np.load(io.BytesIO(rt.services.storage.get_bytes(keys.job_array("local", single_id, "code"))))
    assert np.allclose(alone, codes, atol=1e-5, equal_nan=True)
    # A job that left no autoencoder fails the apply job at once, with the reason.
    rt, wrong_id = run(settings, {"kind": "autoencoder_apply", "input": uri, "model": {"job": apply_id}})
    failed = rt.services.jobs.get("local", wrong_id)
    assert failed.status == JobStatus.failed and "no trained model" in (failed.error or "")


def test_an_input_without_a_usable_image_fails_the_job(settings: Settings) -> None:
    rt, job_id = submit(settings, {"kind": "autoencoder_train", "input": "upload://bad", "epochs": 1})
    upload(rt, "bad", {"a.png": b"", "b.txt": b"hello", "c.jpg": b"\xff\xd8 truncated"})
    run_job_inprocess(settings, "local", job_id)
    record = rt.services.jobs.get("local", job_id)
    assert record.status == JobStatus.failed
    assert "0 decodable image(s) of 3 members" in (record.error or ""), record.error


def _training(spec: dict[str, Any], members: dict[str, bytes]) -> Any:
    ctx = RecordingTrainingContext({"upload://u": tar_bytes(members)})
    pipeline = training_plugin("autoencoder_train").pipeline(parse_spec({"kind": "autoencoder_train", **spec}), ctx)
    pipeline.load_data()
    return pipeline, ctx


def _images(count: int, size: int = 20, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [_png(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def test_an_rgb_archive_with_classes_and_a_broken_member(settings: Settings) -> None:
    members = {f"{'cat' if i % 2 else 'dog'}/{i}.png": data for i, data in enumerate(_images(24))}
    members["dog/broken.png"] = b"\x89PNG broken"
    spec = {"input": "upload://u", "architecture": "conv", "color": "rgb", "input_size": 16, "epochs": 2,
            "batch_size": 8, "conv_channels": [4, 4]}  # fmt: skip
    pipeline, ctx = _training(spec, members)
    data = pipeline.data
    assert data.classes == ("cat", "dog") and data.skipped == 1
    assert data.train.images.shape[1:] == (3, 16, 16) and len(data.train.images) + len(data.test.images) == 24
    pipeline.build(resuming=False)
    pipeline.train_for(1e9, lambda: False)
    figures = pipeline.evaluate()
    pipeline.write_outputs(figures)
    assert figures["skipped_items"] == 1 and "broken" in figures["skipped_examples"][0]["name"]
    tensors, config = ctx.model
    assert config["classes"] == ["cat", "dog"] and config["channels"] == 3
    assert {"curves.png", "reconstructions.png", "code_map.png", "samples.png"} <= set(ctx.files)


def test_multimodal_with_sidecar_attributes() -> None:
    images = _images(12)
    members: dict[str, bytes] = {}
    for i, data in enumerate(images[:10]):
        members[f"set/{i}.png"] = data
        members[f"set/{i}.json"] = json.dumps([i, 2 * i, 1.5]).encode()
    members["set/attributes.json"] = json.dumps({"10.png": [10, 20, 1.5]}).encode()
    members["set/10.png"], members["set/11.png"] = images[10], images[11]  # 11 has none: skipped
    spec = {"input": "upload://u", "architecture": "multimodal", "attributes": "sidecar", "input_size": 12,
            "code_size": 4, "hidden_sizes": [8], "epochs": 2, "batch_size": 4}  # fmt: skip
    pipeline, ctx = _training(spec, members)
    assert pipeline.data.skipped == 1 and pipeline.data.attribute_info["size"] == 3
    assert len(pipeline.data.train.images) + len(pipeline.data.test.images) == 11
    assert (
        pipeline.data.attribute_info["mean"][2] == pytest.approx(1.5) and pipeline.data.attribute_info["std"][2] == 1.0
    )
    pipeline.build(resuming=False)
    pipeline.train_for(1e9, lambda: False)
    figures = pipeline.evaluate()
    assert figures["test_attribute_loss"] is not None and torch.isfinite(torch.tensor(figures["test_attribute_loss"]))
    # A malformed description fails the job naming its file; so does one of an image that is not there.
    with pytest.raises(InvalidInput, match="set/3.json"):
        _training(spec, {**members, "set/3.json": b"[1, 2,"})
    with pytest.raises(InvalidInput, match="ghost.json"):
        _training(spec, {**members, "set/ghost.json": b"[1, 2, 3]"})
    with pytest.raises(InvalidInput, match="differ in length"):
        _training(spec, {**members, "set/3.json": b"[1, 2]"})


def test_multimodal_class_model_applied_to_class_folders(settings: Settings, assets_dir: Path, tmp_path: Path) -> None:
    spec = {"kind": "autoencoder_train", "input": "builtin:mnist", "architecture": "multimodal", "attributes": "class",
            "train_items": 1000, "test_items": 200, "epochs": 6, "batch_size": 32}  # fmt: skip
    rt, train_id = run(settings, spec)
    summary = rt.services.storage.get_json(keys.summary("local", train_id))
    assert summary["test_attribute_accuracy"] > 0.95, summary  # the class survives the joint code
    digits, labels = load_mnist(assets_dir, tmp_path / "mnist", False)
    members = {f"{labels[i]}/{i}.png": _png(digits[i]) for i in range(6000, 6012)}
    members |= {"loose.png": _png(digits[0]), "letters/a.png": _png(digits[1])}
    uri = upload(rt, "m1", members)
    rt, apply_id = run(settings, {"kind": "autoencoder_apply", "input": uri, "model": {"job": train_id}})
    items = {i["name"]: i for i in rt.services.storage.get_json(keys.manifest("local", apply_id))["items"]}
    assert "class folder" in items["loose.png"]["error"] and "'letters'" in items["letters/a.png"]["error"]
    decoded = [i for i in items.values() if i["status"] == "ok"]
    assert len(decoded) == 12 and sum(i["attributes"]["class"] == i["label"] for i in decoded) >= 11


def test_multimodal_sidecar_model_applied_with_sidecars(settings: Settings) -> None:
    images = _images(16, size=12)
    members: dict[str, bytes] = {}
    for i, data in enumerate(images):
        members[f"{i}.png"], members[f"{i}.json"] = data, json.dumps([i % 4, 1.0]).encode()
    spec = {"kind": "autoencoder_train", "input": upload(recording_resources(settings), "t", members), "architecture": "multimodal",
            "attributes": "sidecar", "input_size": 12, "code_size": 4, "hidden_sizes": [8], "epochs": 2,
            "batch_size": 4}  # fmt: skip
    rt, train_id = run(settings, spec)
    assert rt.services.jobs.get("local", train_id).status == JobStatus.succeeded
    apply_members = {"a.png": images[0], "a.json": b"[3, 1]", "b.png": images[1], "c.png": images[2],
                     "c.json": b"[1, 2, 3]", "d.png": images[3], "d.json": b"[1, oops"}  # fmt: skip
    uri = upload(rt, "ap", apply_members)
    rt, apply_id = run(settings, {"kind": "autoencoder_apply", "input": uri, "model": {"job": train_id}})
    manifest = rt.services.storage.get_json(keys.manifest("local", apply_id))
    items = {item["name"]: item for item in manifest["items"]}
    assert manifest["total"] == 4  # the JSON members describe images: they are not items
    assert items["a.png"]["status"] == "ok" and len(items["a.png"]["attributes"]["values"]) == 2
    assert "no attributes" in items["b.png"]["error"]
    assert "3 attributes, but the model was trained on 2" in items["c.png"]["error"]
    assert "d.json" in items["d.png"]["error"] and "not valid JSON" in items["d.png"]["error"]
