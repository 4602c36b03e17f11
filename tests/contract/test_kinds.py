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
from worker.inputs.decode import decode_image
from worker.kinds import map_plugin, plugin_of, training_plugin
from worker.nets import zoo
from worker.optvis.hooks import hook_count
from worker.pipelines.base import Item, TrainedModel
from worker.pipelines.plugin import MapPlugin, TrainingPlugin

TINY = {"arch": "tiny_cnn", "num_classes": 4, "input_size": 32, "preprocessing": "unit"}

SPECS: dict[str, list[dict[str, Any]]] = {
    "saliency": [
        {"method": "gradient", "model": TINY, "target": {"top_k": 2}, "signed": True, "raw_map": True},
        {"method": "spectral_residual", "binary_map": True},
        {"methods": ["gradient", "grad_cam", "spectral_residual"], "model": TINY},
        {"method": "gradient", "model": TINY, "target": {"layer": "features.6", "channel": [1, 2]}},
    ],
    "feature_visualization": [
        {"model": TINY, "targets": [{"class": 1}, {"layer": "features.6", "channel": [0, 3]}], "steps": 3, "size": 32}
    ],
    "inversion": [{"model": TINY, "layers": ["features.2", "features.6"], "steps": 3}],
    "filters": [{"model": TINY, "layers": ["features.2"]}],
    "deepdream": [{"model": TINY, "layers": {"features.6": 1.0}, "octaves": 2, "steps": 2, "tile_size": 0}],
    "classifier_train": [{"input": "builtin:digits", "input_size": 16, "epochs": 2, "batch_size": 64}],
    "autoencoder_train": [
        {"input": "builtin:mnist", "train_items": 256, "test_items": 32, "epochs": 3, "batch_size": 32},
        {"input": "builtin:mnist", "architecture": "conv", "denoising": True, "train_items": 192, "test_items": 16,
         "epochs": 2, "batch_size": 16, "conv_channels": [4, 4]},
        {"input": "builtin:mnist", "architecture": "linear", "code_size": 4, "train_items": 256, "test_items": 16,
         "epochs": 3, "batch_size": 32},
        {"input": "builtin:mnist", "architecture": "tied", "code_size": 2, "hidden_sizes": [16], "train_items": 256,
         "test_items": 16, "epochs": 3, "batch_size": 32},
        {"input": "builtin:mnist", "architecture": "multimodal", "attributes": "class", "code_size": 8,
         "hidden_sizes": [32], "train_items": 256, "test_items": 16, "epochs": 3, "batch_size": 32},
    ],
    "autoencoder_apply": [
        {"model": {"job": "contract-autoencoder_train-0"}},
        {"model": {"job": "contract-autoencoder_train-1"}, "add_noise": True, "seed": 3, "anomalies": 2},
        {"model": {"job": "contract-autoencoder_train-3"}, "write_inputs": False, "batch_size": 2},
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


def _run_map(spec: Any) -> tuple[RecordingContext, list[dict[str, Any]]]:
    ctx = RecordingContext({use.job: _contract_model(use.job) for use in spec.trained_models()})
    pipeline = map_plugin(spec.kind).pipeline(spec, ctx)
    pipeline.check()
    items = _items(spec)
    outcomes = pipeline.run_batch(items)
    pipeline.take_batch_sums()
    entries = [
        {"index": item.index, "name": item.name, "status": "ok", "outputs": o.outputs, **o.data}
        for item, o in zip(items, outcomes, strict=True)
    ]
    for loaded in ctx.models.values():
        assert hook_count(loaded.module) == 0, "the pipeline left forward hooks on the model"
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
