"""The contract every registered kind keeps, checked for each one: the spec union is the registry; the
plug-in resolves to its shape; the pipeline runs in-process on a tiny CPU model, writes only through its
context, leaves no hooks and repeats bit for bit when seeded; its report hooks read its own manifest
entries; a training kind resumes from a checkpoint taken mid-training to exactly the same result.

A new kind must add its tiny specs to ``SPECS`` (the first test fails until it does)."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch

from shared.coordination.redis_backend import RedisCoordinator
from shared.coordination.sqlite_backend import SqliteCoordinator
from shared.kinds import KINDS, JobSpec, Shape, parse_spec
from shared.specs.base import TargetsSpec
from shared.storage.local import LocalStorage
from shared.storage.s3 import S3Storage
from tests.support.contexts import RecordingContext, RecordingTrainingContext
from tests.support.images import png
from tests.support.trained import CONTRACT_CAPTIONER, tiny_captioner
from worker.inputs.decode import decode_image
from worker.kinds import map_plugin, plugin_of, training_plugin
from worker.nets import zoo
from worker.optvis.hooks import hook_count
from worker.pipelines.base import Item, TrainedModel
from worker.pipelines.plugin import MapPlugin, TrainingPlugin

TINY = {"arch": "tiny_cnn", "num_classes": 4, "input_size": 32, "preprocessing": "unit"}
TINY_CAPTIONING = {
    "input": "builtin:captioned_shapes",
    "train_items": 192,  # 12 batches an epoch: the stop is asked every 8, so the contract's kill lands mid-epoch
    "val_items": 10,
    "test_items": 10,
    "image_size": 32,
    "encoder": {"arch": "tiny_cnn", "input_size": 32, "preprocessing": "unit"},
    "embed_dim": 8,
    "attention_dim": 8,
    "decoder_dim": 16,
    "epochs": 2,
    "batch_size": 16,
    "max_length": 20,
}

TINY_GLIMPSE = {
    "input": "builtin:mnist",
    "train_items": 214,
    "test_items": 16,
    "epochs": 2,
    "batch_size": 16,
    "glimpses": 3,
    "glimpse_hidden": 8,
    "location_hidden": 8,
    "hidden": 16,
    "samples": 2,
    "lr_patience": 1,
}

SPECS: dict[str, list[dict[str, Any]]] = {
    "saliency": [
        {"method": "gradient", "model": TINY, "target": {"top_k": 2}, "signed": True, "raw_map": True},
        {"method": "spectral_residual", "binary_map": True},
        {"methods": ["gradient", "grad_cam", "spectral_residual"], "model": TINY},
        {"method": "gradient", "model": TINY, "target": {"layer": "features.6", "channel": [1, 2]}},
        {"method": "smoothgrad", "model": TINY, "smoothgrad_samples": 3, "internal_batch_size": 4},
        {"method": "integrated_gradients", "model": TINY, "ig_steps": 4, "ig_baseline": "blur"},
    ],
    "feature_visualization": [
        {"model": TINY, "targets": [{"class": 1}, {"layer": "features.6", "channel": [0, 3]}], "steps": 3, "size": 32}
    ],
    "inversion": [{"model": TINY, "layers": ["features.2", "features.6"], "steps": 3}],
    "filters": [{"model": TINY, "layers": ["features.2"]}],
    "deepdream": [
        {"model": TINY, "layers": {"features.6": 1.0}, "octaves": 2, "steps": 2, "tile_size": 0, "jitter": 8}
    ],
    "classifier_train": [{"input": "builtin:digits", "input_size": 16, "epochs": 2, "batch_size": 64}],
    "captioning_train": [
        {**TINY_CAPTIONING, "attention": attention, "fine_tune": fine_tune}
        for attention, fine_tune in (("soft", False), ("hard", False), ("soft", True))
    ],
    "caption": [
        {"model": {"job": CONTRACT_CAPTIONER}, "beam_size": 3, "max_length": 6, "raw_maps": True},
        {
            "model": {"job": CONTRACT_CAPTIONER},
            "beam_size": 1,
            "max_length": 4,
            "attention_figure": False,
            "raw_maps": True,
        },
    ],
    "autoencoder_train": [  # 12 batches an epoch: the stop is asked every 8, so the kill lands mid-epoch
        {"input": "builtin:mnist", "train_items": 192, "test_items": 32, "epochs": 3, "batch_size": 16},
        {"input": "builtin:mnist", "architecture": "conv", "denoising": True, "train_items": 192, "test_items": 16,
         "epochs": 2, "batch_size": 16, "conv_channels": [4, 4]},
        {"input": "builtin:mnist", "architecture": "linear", "code_size": 4, "train_items": 192, "test_items": 16,
         "epochs": 3, "batch_size": 16},
        {"input": "builtin:mnist", "architecture": "tied", "code_size": 2, "hidden_sizes": [16], "train_items": 192,
         "test_items": 16, "epochs": 3, "batch_size": 16},
        {"input": "builtin:mnist", "architecture": "multimodal", "attributes": "class", "code_size": 8,
         "hidden_sizes": [32], "train_items": 192, "test_items": 16, "epochs": 3, "batch_size": 16},
    ],
    "autoencoder_apply": [
        {"model": {"job": "contract-autoencoder_train-0"}},
        {"model": {"job": "contract-autoencoder_train-1"}, "add_noise": True, "seed": 3, "anomalies": 2},
        {"model": {"job": "contract-autoencoder_train-3"}, "write_inputs": False, "batch_size": 2},
    ],
    "glimpse_train": [  # 193 training digits after the validation cut: 13 batches, so the kill lands mid-epoch
        {**TINY_GLIMPSE},
        {**TINY_GLIMPSE, "input": "builtin:mnist_cluttered", "canvas_size": 40, "distractors": 2, "patch_size": 6,
         "scales": 2, "core": "lstm", "lr_schedule": "constant"},
        {**TINY_GLIMPSE, "input": "builtin:mnist_translated", "canvas_size": 36, "random_locations": True},
    ],
    "glimpse": [
        {"model": {"job": "contract-glimpse_train-0"}, "samples": 3, "seed": 2},
        {"model": {"job": "contract-glimpse_train-1"}, "figure": False, "raw_glimpses": True, "batch_size": 2},
    ],
}  # fmt: skip

CASES = [(name, index) for name, variants in SPECS.items() for index in range(len(variants))]


def _spec(name: str, index: int) -> Any:
    data = {"kind": name, **SPECS[name][index]}
    if KINDS[name].shape is Shape.MAP:
        data.setdefault("input", "upload://contract")
    return parse_spec(data)


def test_every_kind_has_contract_specs_and_the_union_is_the_registry() -> None:
    assert set(SPECS) == set(KINDS)
    union = typing.get_args(typing.get_args(JobSpec)[0])
    assert set(union) == {entry.spec for entry in KINDS.values()}
    for name, entry in KINDS.items():
        plugin = plugin_of(entry)
        assert isinstance(plugin, TrainingPlugin if entry.shape is Shape.TRAIN else MapPlugin), name


@pytest.fixture
def no_service() -> Iterator[None]:
    """Nothing but the context may write: the store's writes and the coordinators fail if touched."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a pipeline wrote around its context")

    with pytest.MonkeyPatch.context() as patch:
        for cls in (LocalStorage, S3Storage):
            patch.setattr(cls, "put_bytes", refuse)
            patch.setattr(cls, "put_stream", refuse)
        for cls in (SqliteCoordinator, RedisCoordinator):
            patch.setattr(cls, "__init__", refuse)
        yield


def _items(spec: Any) -> list[Item]:
    if isinstance(spec, TargetsSpec):
        empty = np.zeros((0, 0, 3), dtype=np.uint8)
        return [Item(i, name, empty, params=params) for i, (name, params) in enumerate(spec.render_targets())]
    images = [png(40 + 8 * i, 30 + 4 * i, seed=i) for i in range(3)]
    return [Item(i, f"{i}.png", decode_image(data, max_pixels=10**7, max_bytes=10**7)) for i, data in enumerate(images)]


@cache
def _contract_model(name: str) -> TrainedModel:
    """``{"job": "contract-KIND-N"}``: the model that training kind's N-th contract spec leaves, trained
    in-process, with the config the engine would store (its kind and model type added)."""
    kind, index = name.removeprefix("contract-").rsplit("-", 1)
    ctx = RecordingTrainingContext()
    trained = _trainer(_spec(kind, int(index)), ctx)
    trained.train_for(1e9, lambda: False)
    trained.write_outputs(trained.evaluate())
    if ctx.model is None:
        raise RuntimeError(f"{kind} saved no model")
    tensors, config = ctx.model
    config = {"kind": kind, "model_type": KINDS[kind].produces, **config}
    module = training_plugin(kind).load_model(config, tensors)
    zoo.ready_for_inference(module, torch.device("cpu"))
    return TrainedModel(module, config)


def _trained_for(spec: Any) -> dict[str, TrainedModel]:
    """The trained models a map spec names: the random captioner, or a contract training spec's model."""
    return {
        use.job: tiny_captioner() if use.job == CONTRACT_CAPTIONER else _contract_model(use.job)
        for use in spec.trained_models()
    }


def _run_map(spec: Any) -> tuple[RecordingContext, list[dict[str, Any]]]:
    ctx = RecordingContext(_trained_for(spec))
    pipeline = map_plugin(spec.kind).pipeline(spec, ctx)
    pipeline.check()
    items = _items(spec)
    outcomes = pipeline.run_batch(items)
    pipeline.take_batch_sums()
    entries = [
        {"index": item.index, "name": item.name, "status": "ok", "outputs": o.outputs, **o.data}
        for item, o in zip(items, outcomes, strict=True)
    ]
    for module in [loaded.module for loaded in ctx.models.values()] + [t.module for t in ctx.trained_models()]:
        assert hook_count(module) == 0, "the pipeline left forward hooks on a model"
    return ctx, entries


@pytest.mark.parametrize(("name", "index"), [c for c in CASES if KINDS[c[0]].shape is not Shape.TRAIN])
def test_map_kind_runs_alone_through_its_context_and_repeats(name: str, index: int, no_service: None) -> None:
    spec = _spec(name, index)
    ctx, entries = _run_map(spec)
    assert len(entries) == len(_items(spec)) and all(entry["outputs"] for entry in entries)
    written = {key for entry in entries for key in entry["outputs"].values()}
    assert written <= set(ctx.written), "an output names a key the context never wrote"
    again, entries_again = _run_map(spec)
    assert again.written == ctx.written, "a seeded run must repeat bit for bit"
    assert json.dumps(entries_again, sort_keys=True) == json.dumps(entries, sort_keys=True)
    hooks = map_plugin(name).report
    for entry in entries:
        assert all(isinstance(line, str) for line in hooks.caption(entry))
    if hooks.summary is not None:
        summary = hooks.summary(spec)
        for entry in entries:
            summary.add(entry)
        json.dumps(summary.finish(_Files(ctx)))
        hooks.sections(summary.finish(_Files(ctx)))


class _Files:
    def __init__(self, ctx: RecordingContext) -> None:
        self.ctx = ctx

    def read(self, key: str) -> bytes:
        return self.ctx.written[key]

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        self.ctx.written[f"job/{output}"] = data
        return f"job/{output}"


def _trainer(spec: Any, ctx: RecordingTrainingContext, *, resuming: bool = False) -> Any:
    pipeline = training_plugin(spec.kind).pipeline(spec, ctx)
    pipeline.load_data()
    pipeline.build(resuming=resuming)
    return pipeline


@pytest.mark.parametrize(("name", "index"), [c for c in CASES if KINDS[c[0]].shape is Shape.TRAIN])
def test_training_kind_resumes_a_killed_step_to_the_same_result(name: str, index: int, no_service: None) -> None:
    spec = _spec(name, index)
    straight_ctx = RecordingTrainingContext()
    straight = _trainer(spec, straight_ctx)
    straight.train_for(1e9, lambda: False)
    assert straight.done and straight.progress[0] == straight.progress[1]
    # Killed mid-training: only the checkpoint survives, as bytes in the store.
    first = _trainer(spec, RecordingTrainingContext())
    checks = iter(range(10**9))
    first.train_for(1e9, lambda: next(checks) >= 1)
    assert not first.done
    tensors, metadata = first.state()
    if "batch_index" in metadata:  # every training loop of ours keeps it: the kill is mid-epoch, the hard case
        assert metadata["batch_index"] != 0, "the contract spec's kill lands on an epoch boundary"
    blob = safetensors.torch.save(tensors, metadata={"state": json.dumps(metadata)})
    resumed_ctx = RecordingTrainingContext()
    resumed = _trainer(spec, resumed_ctx, resuming=True)
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])["__metadata__"]
    resumed.restore(safetensors.torch.load(blob), json.loads(header["state"]))
    resumed.train_for(1e9, lambda: False)
    assert resumed.history == straight.history
    expected, got = straight.state()[0], resumed.state()[0]
    assert set(expected) == set(got)
    for key, value in expected.items():
        assert torch.equal(value, got[key]), key
    figures = resumed.evaluate()
    json.dumps(figures)
    resumed.write_outputs(figures)
    assert resumed_ctx.model is not None, "a training kind must save its model"
    model_tensors, config = resumed_ctx.model
    rebuilt = training_plugin(name).load_model(config, model_tensors)
    assert isinstance(rebuilt, torch.nn.Module)
    training_plugin(name).report.sections({**figures, "status": "succeeded"})


def _close(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two manifest entries differ beyond float rounding (numbers within 1e-3 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} and {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _close(x, y, f"{path}.{i}")]
    if isinstance(a, float) and isinstance(b, int | float):
        return [] if abs(a - b) <= 1e-3 * max(1.0, abs(a), abs(b)) else [f"{path}: {a} and {b}"]
    return [] if a == b else [f"{path}: {a!r} and {b!r}"]


def _picture(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    if data.startswith(b"\x93NUMPY"):
        return np.load(io.BytesIO(data)).astype(np.float64)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


@pytest.mark.parametrize(("name", "index"), [c for c in CASES if KINDS[c[0]].shape is not Shape.TRAIN])
def test_an_items_result_does_not_depend_on_its_batch_neighbours(name: str, index: int, no_service: None) -> None:
    """Each item alone (at its own index) against the same item in a batch: equal to float rounding (a
    level of an 8-bit picture at most). oneDNN is off here: its
    convolutions choose their algorithm by batch size, and float rounding that differs with the batch can
    flip a max-pool's choice in a random tiny model (a 35% change of one gradient map, measured); without
    it, any difference left is the pipeline's own doing (shared noise, shared transforms, batch statistics)."""
    with torch.backends.mkldnn.flags(enabled=False):
        _compare_alone_and_together(name, _spec(name, index))


def _compare_alone_and_together(name: str, spec: Any) -> None:
    items = _items(spec)
    ctx = RecordingContext(_trained_for(spec))
    pipeline = map_plugin(name).pipeline(spec, ctx)
    together = pipeline.run_batch(items)
    for item, joint in zip(items, together, strict=True):
        alone_ctx = RecordingContext(_trained_for(spec))
        (single,) = map_plugin(name).pipeline(spec, alone_ctx).run_batch([item])
        assert not _close(single.data, joint.data), (name, item.name, _close(single.data, joint.data)[:3])
        assert set(single.outputs) == set(joint.outputs)
        for output, key in joint.outputs.items():
            a, b = _picture(ctx.written[key]), _picture(alone_ctx.written[single.outputs[output]])
            assert a.shape == b.shape, (name, output)
            if ctx.written[key].startswith(b"\x93NUMPY"):  # raw values: to float rounding (batched matmuls)
                assert np.abs(a - b).max() <= 1e-4 * max(np.abs(a).max(), 1e-12), (name, output)
            else:  # 8-bit pictures: a value on a rounding edge may land one level apart
                assert np.abs(a - b).max() <= 1.0, (name, output, np.abs(a - b).max())
