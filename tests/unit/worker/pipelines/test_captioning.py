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
from shared.specs.captioning import CaptioningTrainSpec
from tests.support.contexts import RecordingTrainingContext, tar_bytes
from tests.support.runtime import recording_resources
from tests.support.trained import shapes_classifier
from worker.engine.inprocess import run_job_inprocess
from worker.engine.plan import _builtin_items
from worker.inputs.builtin import parse_builtin
from worker.inputs.captioned_shapes import make_scenes
from worker.kinds import training_plugin
from worker.nets.grid_encoder import GridEncoder
from worker.pipelines import captioning_loop
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
    rt, held_out = _run(local_settings, {**spec, "input": "builtin:captioned_shapes?n=40&size=64", "raw_maps": False})
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


def test_held_out_scenes_are_drawn_at_the_captioners_training_size(local_settings: Settings) -> None:
    # Scenes drawn at 128 px and shrunk to the encoder's input are not what a captioner trained on 64-px
    # scenes saw (strokes and edges differ): the size is a parameter of the input, and a caption job over
    # scenes of the default size fails at once when its captioner was trained at another.
    scenes = list(_builtin_items(parse_builtin("builtin:captioned_shapes?n=3&size=64&seed=7"), local_settings))
    assert [image.shape for _, image, _ in scenes] == [(64, 64, 3)] * 3
    assert all(0 <= v <= 64 for _, _, truth in scenes for obj in truth["objects"] for v in obj["box"])
    assert scenes[0][2]["references"] == [make_scenes(1, 64, seed=7, stream="apply")[0].caption]
    assert [
        image.shape for _, image, _ in _builtin_items(parse_builtin("builtin:captioned_shapes?n=1"), local_settings)
    ] == [(128, 128, 3)]
    train = {
        **SMALL,
        "encoder": {"arch": "tiny_cnn", "input_size": 32, "preprocessing": "unit"},
        "image_size": 48,
        "train_items": 20,
        "val_items": 10,
        "test_items": 10,
        "embed_dim": 8,
        "attention_dim": 8,
        "decoder_dim": 8,
        "epochs": 1,
    }
    rt, train_id = _run(local_settings, train)
    assert rt.services.storage.get_json(keys.model_config("local", train_id))["scene_size"] == 48
    spec = {"kind": "caption", "model": {"job": train_id}, "beam_size": 1, "attention_figure": False}
    rt, wrong = _run(local_settings, {**spec, "input": "builtin:captioned_shapes?n=4"})
    record = rt.services.jobs.get("local", wrong)
    assert record.status == JobStatus.failed, record.status
    assert "trained on 48-px scenes" in (record.error or "") and "?n=4&size=48" in (record.error or ""), record.error
    rt, right = _run(local_settings, {**spec, "input": "builtin:captioned_shapes?n=4&size=48"})
    record = rt.services.jobs.get("local", right)
    assert record.status == JobStatus.succeeded, record.error
    assert rt.services.storage.get_json(keys.manifest("local", right))["total"] == 4
    # A size named in the input is taken as asked, even when it is not the model's.
    rt, asked = _run(local_settings, {**spec, "input": "builtin:captioned_shapes?n=2&size=64"})
    assert rt.services.jobs.get("local", asked).status == JobStatus.succeeded


TINY_TRAIN = {
    **SMALL,
    "encoder": {"arch": "tiny_cnn", "input_size": 32, "preprocessing": "unit"},
    "image_size": 32,
    "train_items": 40,
    "val_items": 10,
    "test_items": 10,
    "embed_dim": 8,
    "attention_dim": 8,
    "decoder_dim": 8,
}


def test_early_stopping_stops_when_validation_bleu_stops_rising_and_keeps_the_best(monkeypatch: Any) -> None:
    # Validation BLEU-4 rises for two epochs, then falls: with patience 2 training stops after epoch 4,
    # and the model left is the one of epoch 2, not the last.
    scripted = iter([0.2, 0.5, 0.4, 0.45, 0.9, 0.9])
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    spec = parse_spec({**TINY_TRAIN, "epochs": 10, "patience": 2})
    pipeline = training_plugin(spec.kind).pipeline(spec, RecordingTrainingContext())

    def bleu4(_references: Any, _hypotheses: Any) -> float:
        trainer = pipeline.trainer
        snapshots[trainer.epoch + 1] = {k: v.clone() for k, v in trainer.decoder.state_dict().items()}
        return next(scripted)

    monkeypatch.setattr(captioning_loop, "bleu4", bleu4)
    pipeline.load_data()
    pipeline.build(resuming=False)
    pipeline.train_for(1e9, lambda: False)
    assert pipeline.done and pipeline.trainer.stopped
    assert [h["val_bleu4"] for h in pipeline.history] == [0.2, 0.5, 0.4, 0.45]
    assert pipeline.trainer.best_epoch == 2 and pipeline.trainer.best_bleu4 == 0.5
    figures = pipeline.evaluate()  # puts the best weights back first
    assert figures["best_epoch"] == 2 and figures["epochs"] == 4 and figures["stopped_early"]
    final = pipeline.trainer.decoder.state_dict()
    assert all(torch.equal(final[k], snapshots[2][k]) for k in final)
    assert not all(torch.equal(snapshots[4][k], snapshots[2][k]) for k in final)  # it did change after epoch 2
    # Patience 0 never stops early.
    scripted = iter([0.5, 0.4, 0.3])
    spec = parse_spec({**TINY_TRAIN, "epochs": 3, "patience": 0})
    pipeline = training_plugin(spec.kind).pipeline(spec, RecordingTrainingContext())
    pipeline.load_data()
    pipeline.build(resuming=False)
    pipeline.train_for(1e9, lambda: False)
    assert len(pipeline.history) == 3 and not pipeline.trainer.stopped and pipeline.trainer.best_epoch == 1


@pytest.mark.parametrize("fine_tune", [False, True])
def test_a_frozen_encoder_sees_each_image_once_however_many_epochs(monkeypatch: Any, fine_tune: bool) -> None:
    seen: list[int] = []
    forward = GridEncoder.forward

    def counting(self: GridEncoder, images: torch.Tensor) -> torch.Tensor:
        seen.append(len(images))
        return forward(self, images)

    monkeypatch.setattr(GridEncoder, "forward", counting)
    spec = parse_spec({**TINY_TRAIN, "epochs": 3, "patience": 0, "fine_tune": fine_tune, "batch_size": 16})
    pipeline = training_plugin(spec.kind).pipeline(spec, RecordingTrainingContext())
    pipeline.load_data()
    pipeline.build(resuming=False)
    pipeline.train_for(1e9, lambda: False)
    pipeline.evaluate()
    images = 40 + 10 + 10
    if not fine_tune:
        # One pass over every image while the data is prepared; then three epochs of training, three
        # validation decodes and the test decode all read the cached features.
        assert sum(seen) == images, seen
    else:
        # Fine-tuned, the features change with every step: one image for the grid's shape, then every
        # batch (3 epochs x 3 batches of 16, 16, 8 captions), every validation pass and the test pass.
        assert sum(seen) == 1 + 3 * 40 + 3 * 10 + 10, seen


def test_the_sharpness_penalty_waits_its_start_then_grows_to_its_weight() -> None:
    spec = parse_spec({**SMALL, "sharpness": 0.06, "sharpness_start": 4, "sharpness_ramp": 3})
    plain = parse_spec({**SMALL, "sharpness": 0.06})
    assert isinstance(spec, CaptioningTrainSpec) and isinstance(plain, CaptioningTrainSpec)
    weights = [captioning_loop.sharpness_weight(spec, epoch) for epoch in range(9)]
    assert weights[:4] == [0.0] * 4
    assert weights[4:7] == pytest.approx([0.02, 0.04, 0.06])
    assert weights[7:] == pytest.approx([0.06, 0.06])
    assert [captioning_loop.sharpness_weight(plain, epoch) for epoch in range(3)] == [0.06] * 3
