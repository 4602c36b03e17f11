"""The captioning kinds end to end in one process: a captioner trained in bounded steps on generated
scenes learns to describe them and to look at what it names (a small version of the quality figures),
then captions an archive whose COCO captions JSON gives the references, and generated held-out scenes;
a job pointing at the wrong kind of model, and caption files that are wrong, fail at once with a reason."""

from __future__ import annotations

import io
import json
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
from tests.support.contexts import RecordingTrainingContext, tar_bytes
from tests.support.runtime import recording_resources
from tests.support.trained import shapes_classifier
from worker.engine.inprocess import run_job_inprocess
from worker.inputs.captioned_shapes import make_scenes
from worker.kinds import training_plugin
from worker.runtime.resources import Resources


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """The decoder's many small operations run faster on one thread than on two that wait for each other
    (and far faster on a machine shared with other work)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _shapes_encoder_context() -> RecordingTrainingContext:
    classifier, _, _ = shapes_classifier()

    class WithEncoder(RecordingTrainingContext):
        def weights(self, reference: str, arch: str) -> dict[str, torch.Tensor]:
            return classifier.state_dict()

    return WithEncoder()


SMALL = {
    "kind": "captioning_train",
    "input": "builtin:captioned_shapes",
    "encoder": {"arch": "tiny_cnn", "weights": "upload://enc", "input_size": 64, "preprocessing": "unit"},
    "image_size": 64,
    "val_items": 40,
    "test_items": 60,
    "embed_dim": 48,
    "attention_dim": 48,
    "decoder_dim": 96,
    "dropout": 0.1,
    "learning_rate": 3e-3,
    "batch_size": 32,
}


def _submit(settings: Settings, spec: dict[str, Any]) -> tuple[Resources, str]:
    rt = recording_resources(settings)
    parsed = parse_spec(spec)
    record = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None)
    return rt, record.id


def _run(settings: Settings, spec: dict[str, Any]) -> tuple[Resources, str]:
    rt, job_id = _submit(settings, spec)
    run_job_inprocess(settings, "local", job_id)
    return rt, job_id


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_captioner_trains_in_steps_describes_scenes_and_captions_archives(local_settings: Settings) -> None:
    # The encoder: the shapes classifier of the test session (a TinyCNN that knows shapes), as an upload.
    classifier, _, _ = shapes_classifier()
    rt, _ = _submit(local_settings, {"kind": "classifier_train", "input": "builtin:shapes"})
    store = rt.services.storage
    store.put_bytes(keys.upload("local", "enc", "tiny.safetensors"), safetensors.torch.save(classifier.state_dict()))
    train = {
        "kind": "captioning_train",
        "input": "builtin:captioned_shapes",
        "encoder": {"arch": "tiny_cnn", "weights": "upload://enc", "input_size": 64, "preprocessing": "unit"},
        "image_size": 64,
        "train_items": 1200,
        "val_items": 60,
        "test_items": 100,
        "embed_dim": 48,
        "attention_dim": 48,
        "decoder_dim": 96,
        "dropout": 0.1,
        "learning_rate": 3e-3,
        "epochs": 12,
        "batch_size": 32,
        "step_seconds": 4,
    }
    rt, train_id = _run(local_settings, train)
    store = rt.services.storage
    record = rt.services.jobs.get("local", train_id)
    assert record.status == JobStatus.succeeded, record.error
    assert store.get_json(keys.checkpoint_latest("local", train_id))["step"] >= 2  # more than one bounded step
    summary = store.get_json(keys.summary("local", train_id))
    test = summary["test"]
    # Measured: BLEU-4 0.30-0.35 and 48-52% of object words looked at (7% by chance) with this small
    # encoder and 12 epochs; a decoder that ignores the image scores near 0, and attention that ignores
    # the objects scores chance. (The full figures, with MobileNetV2: bench/captioning_quality.py.)
    assert test["bleu4"] >= 0.25, test
    assert test["attention_in_box"] >= max(0.35, 4 * test["attention_in_box_chance"]), test
    config = store.get_json(keys.model_config("local", train_id))
    assert config["model_type"] == "captioner" and config["encoder"]["layer"] == "features"
    for name in ("curves.png", "attention_examples.png"):
        assert store.get_bytes(keys.job_file("local", train_id, name)).startswith(b"\x89PNG")
    assert "BLEU-4" in store.get_bytes(keys.report("local", train_id)).decode()

    # An archive of fresh scenes with a COCO captions JSON: references arrive with each image.
    scenes = make_scenes(12, 64, seed=5, stream="apply")
    images = [{"id": i, "file_name": f"{i:02d}.png"} for i in range(12)]
    annotations = [{"id": i, "image_id": i, "caption": s.caption} for i, s in enumerate(scenes)]
    members = {f"images/{i:02d}.png": _png(s.image) for i, s in enumerate(scenes)}
    members["images/captions.json"] = json.dumps({"images": images, "annotations": annotations}).encode()
    store.put_bytes(keys.upload("local", "scenes", "scenes.tar"), tar_bytes(members))
    spec = {"kind": "caption", "input": "upload://scenes", "model": {"job": train_id}, "beam_size": 3, "raw_maps": True}
    rt, caption_id = _run(local_settings, spec)
    store = rt.services.storage
    manifest = store.get_json(keys.manifest("local", caption_id))
    assert manifest["total"] == 12 and all(item["status"] == "ok" for item in manifest["items"])
    item = manifest["items"][0]
    assert item["references"] == [scenes[0].caption] and item["log_prob"] < 0
    strip = Image.open(io.BytesIO(store.get_bytes(keys.in_job("local", caption_id, item["outputs"]["attention"]))))
    assert strip.width >= 160 * min(8, len(item["caption"].split()) + 1)  # the image and a panel per word
    maps = np.load(io.BytesIO(store.get_bytes(keys.in_job("local", caption_id, item["outputs"]["maps"]))))
    assert maps.shape == (len(item["caption"].split()), 8, 8)
    np.testing.assert_allclose(maps.astype(np.float32).sum(axis=(1, 2)), 1.0, atol=1e-2)
    scores = store.get_json(keys.summary("local", caption_id))["references"]
    assert scores["items"] == 12 and scores["bleu4"] >= 0.15, scores
    assert "Against the reference captions" in store.get_bytes(keys.report("local", caption_id)).decode()

    # Held-out generated scenes: references and boxes, so the job also says where the attention fell.
    rt, held_out = _run(local_settings, {**spec, "input": "builtin:captioned_shapes?n=40", "raw_maps": False})
    scores = rt.services.storage.get_json(keys.summary("local", held_out))["references"]
    assert scores["attention_in_box"] >= 3 * scores["attention_in_box_chance"], scores

    # A classifier job is not a captioner: the caption job fails at once, naming what it is.
    rt, classifier_id = _run(
        local_settings, {"kind": "classifier_train", "input": "builtin:digits", "epochs": 1, "input_size": 16}
    )
    rt, wrong = _run(local_settings, {**spec, "model": {"job": classifier_id}})
    record = rt.services.jobs.get("local", wrong)
    assert record.status == JobStatus.failed and "trained a classifier" in (record.error or ""), record.error


def test_bad_caption_files_fail_the_job_before_training(local_settings: Settings) -> None:
    rt, _ = _submit(local_settings, {"kind": "classifier_train", "input": "builtin:shapes"})
    store = rt.services.storage
    scenes = make_scenes(12, 32, seed=1)
    members = {f"{i}.png": _png(s.image) for i, s in enumerate(scenes)}
    lines = "\n".join(f"{i}.png#0\t{s.caption}" for i, s in enumerate(scenes))
    store.put_bytes(
        keys.upload("local", "good", "good.tar"), tar_bytes({**members, "Flickr8k.token.txt": lines.encode()})
    )
    ghost = lines + "\nmissing.png#0\ta ghost\n"
    store.put_bytes(
        keys.upload("local", "bad", "bad.tar"), tar_bytes({**members, "Flickr8k.token.txt": ghost.encode()})
    )
    broken = {**members, "captions.json": b'{"images": [{"id": 1, "file_name": "0.png"}],\n "annotations": [}'}
    store.put_bytes(keys.upload("local", "json", "json.tar"), tar_bytes(broken))
    spec = {
        "kind": "captioning_train",
        "input": "upload://good",
        "encoder": {"arch": "tiny_cnn", "input_size": 32},
        "embed_dim": 8,
        "attention_dim": 8,
        "decoder_dim": 8,
        "epochs": 1,
    }
    rt, good = _run(local_settings, spec)
    summary = rt.services.storage.get_json(keys.summary("local", good))
    assert summary["images"] == {"train": 10, "val": 1, "test": 1} and not summary["named_split"]
    for upload, expected in (
        ("bad", ["Flickr8k.token.txt line 13", "missing.png"]),
        ("json", ["captions.json line 2"]),
    ):
        rt, job_id = _run(local_settings, {**spec, "input": f"upload://{upload}"})
        record = rt.services.jobs.get("local", job_id)
        assert record.status == JobStatus.failed and all(e in (record.error or "") for e in expected), record.error
    # The same file beside the images of a caption job fails it while it is planned.
    rt, caption_id = _run(local_settings, {"kind": "caption", "input": "upload://bad", "model": {"job": good}})
    record = rt.services.jobs.get("local", caption_id)
    assert record.status == JobStatus.failed and "missing.png" in (record.error or ""), record.error


def test_hard_attention_learns_with_reinforce() -> None:
    spec = parse_spec({**SMALL, "attention": "hard", "train_items": 600, "epochs": 6, "patience": 0})
    pipeline = training_plugin(spec.kind).pipeline(spec, _shapes_encoder_context())
    pipeline.load_data()
    pipeline.build(resuming=False)
    pipeline.train_for(1e9, lambda: False)
    history = pipeline.history
    assert history[-1]["train_cross_entropy"] < 0.6 * history[0]["train_cross_entropy"], history
    assert max(h["val_bleu4"] for h in history[-3:]) > history[0]["val_bleu4"] + 0.05, history
    figures = pipeline.evaluate()
    assert figures["test"]["bleu4"] >= 0.1, figures["test"]
