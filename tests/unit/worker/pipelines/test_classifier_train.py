"""classifier_train: exact resume from checkpoints, bounded steps, and a shapes model that works."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from shared import keys
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.settings import Settings
from tests.support.runtime import recording_resources, sent_tasks
from worker.engine.inprocess import run_job_inprocess
from worker.inputs.shapes import make_shapes
from worker.nets import zoo
from worker.nets.tiny import TinyCNN
from worker.pipelines.classifier_loop import TrainData, Trainer, to_tensor_images
from worker.runtime.resources import Resources


def _data(n: int = 512) -> TrainData:
    train, test = make_shapes(n, 32, 0), make_shapes(64, 32, 1)
    cpu = torch.device("cpu")
    return TrainData(
        to_tensor_images(train.images, 32, cpu),
        torch.from_numpy(train.labels),
        to_tensor_images(test.images, 32, cpu),
        torch.from_numpy(test.labels),
        train.classes,
    )


def _trainer(data: TrainData) -> Trainer:
    torch.manual_seed(0)
    return Trainer(
        TinyCNN(4, width=8),
        data,
        epochs=2,
        batch_size=32,
        learning_rate=2e-3,
        weight_decay=0.0,
        preprocessing="unit",
        seed=5,
    )


def test_resume_from_a_checkpoint_is_bit_identical() -> None:
    data = _data()
    straight = _trainer(data)
    straight.train_for(1e9)
    halves = _trainer(data)
    halves.train_for(1e9, should_stop=lambda: halves.batch_index >= 8)  # stops mid-epoch, at a batch boundary
    assert not halves.done and halves.batch_index == 8
    tensors, metadata = halves.state()
    blob = safetensors.torch.save(tensors)
    resumed = _trainer(data)
    resumed.load_state(safetensors.torch.load(blob), json.loads(json.dumps(metadata)))
    resumed.train_for(1e9)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert straight.history == resumed.history


def submit(settings: Settings, spec: dict[str, Any]) -> tuple[Resources, str, list[tuple[str, tuple[Any, ...]]]]:
    rt = recording_resources(settings)
    parsed = parse_spec(spec)
    record = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None)
    return rt, record.id, sent_tasks(rt)


def test_shapes_classifier_trains_in_steps_and_explains_shapes(local_settings: Settings, tmp_path: Path) -> None:
    spec = {
        "kind": "classifier_train",
        "input": "builtin:shapes",
        "epochs": 2,
        "train_items": 3000,
        "test_items": 500,
        "step_seconds": 1,
    }
    rt, job_id, _ = submit(local_settings, spec)
    services = rt.services
    run_job_inprocess(local_settings, "local", job_id)
    record = services.jobs.get("local", job_id)
    assert record.status == JobStatus.succeeded and record.progress.done == 2
    summary = services.storage.get_json(keys.summary("local", job_id))
    assert summary["test_accuracy"] >= 0.95, summary
    assert services.storage.get_json(keys.checkpoint_latest("local", job_id))["step"] >= 2  # more than one step
    assert services.storage.get_bytes(keys.job_file("local", job_id, "curves.png")).startswith(b"\x89PNG")
    assert "test accuracy" in services.storage.get_bytes(keys.report("local", job_id)).decode()
    # The trained model, referred to by its job, classifies fresh shapes.
    shapes = make_shapes(12, 64, seed=77)
    archive = tmp_path / "shapes.tar"
    with tarfile.open(archive, "w") as tar:
        for i, image in enumerate(shapes.images):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            info = tarfile.TarInfo(f"{i:02d}.png")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    services.storage.put_bytes(keys.upload("local", "s1", "shapes.tar"), archive.read_bytes())
    saliency = {"kind": "saliency", "input": "upload://s1", "method": "gradient", "model": {"job": job_id}}
    rt, explain_id, _ = submit(local_settings, saliency)
    services = rt.services
    run_job_inprocess(local_settings, "local", explain_id)
    items = services.storage.get_json(keys.manifest("local", explain_id))["items"]
    labels = [item["predictions"][0]["label"] for item in items]
    expected = [shapes.classes[c] for c in shapes.labels]
    assert sum(a == b for a, b in zip(labels, expected, strict=True)) >= 11, (labels, expected)
    # Quality on generated shapes with ground-truth boxes: far above chance, stated in the report.
    for method in ("gradient", "grad_cam"):
        quality_spec = {"kind": "saliency", "input": "builtin:shapes?n=60", "method": method, "model": {"job": job_id}}
        rt, quality_id, _ = submit(local_settings, quality_spec)
        services = rt.services
        run_job_inprocess(local_settings, "local", quality_id)
        figures = services.storage.get_json(keys.summary("local", quality_id))["quality"]
        assert figures["items"] == 60 and figures["accuracy"] >= 0.9
        assert figures["pointing_game"] >= max(0.6, 3 * figures["pointing_baseline"]), (method, figures)
        assert figures["deletion_auc"] < figures["random_deletion_auc"] - 0.1, (method, figures)
        assert "pointing game" in services.storage.get_bytes(keys.report("local", quality_id)).decode()


def test_imagefolder_archive_with_a_broken_member(local_settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    archive = tmp_path / "folders.tar"
    with tarfile.open(archive, "w") as tar:
        for i in range(40):
            cls = "bright" if i % 2 else "dark"
            value = 200 if cls == "bright" else 40
            buffer = io.BytesIO()
            Image.fromarray(np.clip(rng.normal(value, 10, (20, 20, 3)), 0, 255).astype(np.uint8)).save(buffer, "PNG")
            info = tarfile.TarInfo(f"{cls}/{i}.png")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
        info = tarfile.TarInfo("dark/broken.png")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"nope"))
    spec = {"kind": "classifier_train", "input": "upload://f1", "input_size": 16, "epochs": 10, "batch_size": 8}
    rt, job_id, _ = submit(local_settings, spec)
    services = rt.services
    services.storage.put_bytes(keys.upload("local", "f1", "folders.tar"), archive.read_bytes())
    run_job_inprocess(local_settings, "local", job_id)
    summary = services.storage.get_json(keys.summary("local", job_id))
    assert summary["classes"] == ["bright", "dark"] and summary["skipped_items"] == 1
    assert summary["train_items"] + summary["test_items"] == 40 and summary["test_accuracy"] >= 0.9
    # Seeded: the same spec trains the same model.
    rt, again, _ = submit(local_settings, spec)
    services = rt.services
    run_job_inprocess(local_settings, "local", again)
    first = services.storage.get_bytes(keys.model_weights("local", job_id))
    assert services.storage.get_bytes(keys.model_weights("local", again)) == first


@pytest.mark.parametrize("arch", ["squeezenet1_1", "resnet18", "mobilenet_v2", "tiny_cnn"])
def test_classifier_replacement_for_fine_tuning(arch: str) -> None:
    model = zoo.replace_classifier(zoo.build(arch, 1000), 7).eval()
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 7)
