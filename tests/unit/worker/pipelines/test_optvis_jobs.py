"""The optimisation job kinds end to end in-process (local store, SQLite coordinator): outputs, manifest
fields, job-level pictures, the report, and seeded repeatability. Models are the trained shapes
classifier, stored as an upload like a user's own weights."""

from __future__ import annotations

import io
import tarfile
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
from tests.support.images import png
from tests.support.trained import SIZE, shapes_classifier
from worker.engine.inprocess import run_job_inprocess
from worker.inputs.shapes import make_shapes
from worker.optvis.hooks import hook_count
from worker.pipelines.base import Item
from worker.pipelines.feature_visualization import FeatureVisualizationPipeline
from worker.runtime.context import JobContext
from worker.runtime.models import ModelCache
from worker.runtime.services import Services

TINY = {"arch": "tiny_cnn", "weights": "upload://w", "num_classes": 4, "input_size": SIZE, "preprocessing": "unit"}


def _services(settings: Settings) -> Services:
    services = Services.from_settings(settings, lambda name, args: None)
    model, _, _ = shapes_classifier()
    weights = safetensors.torch.save(model.state_dict())
    services.storage.put_bytes(keys.upload("local", "w", "shapes.safetensors"), weights)
    return services


def _archive(services: Services, count: int = 3) -> str:
    buffer = io.BytesIO()
    shapes = make_shapes(count, SIZE, seed=5)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        members = [(f"s{i}.png", _png(shapes.images[i])) for i in range(count)] + [("broken.png", b"not an image")]
        members.append(("big.png", png(150, 100, seed=1)))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    services.storage.put_bytes(keys.upload("local", "a", "in.tar"), buffer.getvalue())
    return "upload://a"


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _run(settings: Settings, services: Services, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    parsed = parse_spec(spec)
    record = services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None)
    run_job_inprocess(settings, "local", record.id)
    assert services.jobs.get("local", record.id).status == JobStatus.succeeded
    manifest = services.storage.get_json(keys.manifest("local", record.id))
    for item in manifest["items"]:  # as whole keys, so the tests below can read them
        item["outputs"] = {
            name: keys.in_job("local", record.id, path) for name, path in item.get("outputs", {}).items()
        }
    return record.id, manifest


def _image(services: Services, key: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(services.storage.get_bytes(key))).convert("RGB"))


def test_feature_visualization_job_renders_every_target(local_settings: Settings) -> None:
    services = _services(local_settings)
    spec = {
        "kind": "feature_visualization",
        "model": TINY,
        "targets": [{"class": 0}, {"class": 2}, {"layer": "features.10", "channel": [1, 5]}],
        "steps": 40,
        "size": SIZE,
        "transforms": False,  # the recorded curve is then the objective itself, not a transformed view
        "batch_size": 3,
        "seed": 4,
    }
    job_id, manifest = _run(local_settings, services, spec)
    items = manifest["items"]
    assert services.storage.get_json(keys.plan("local", job_id))["shards"] == 2  # one batch of 3 per shard
    assert [i["name"] for i in items] == ["class-0", "class-2", "features.10-1", "features.10-5"]
    assert all(i["status"] == "ok" for i in items), items
    assert items[0]["target"] == {"class": 0, "label": "0"} and items[2]["target"] == {
        "layer": "features.10",
        "channel": 1,
    }
    assert [i["predictions"][0]["class"] for i in items[:2]] == [0, 2]  # class images show their class
    assert all(i["curve"][-1][1] > i["curve"][0][1] for i in items)  # every objective rose
    assert _image(services, items[0]["outputs"]["image"]).shape == (SIZE, SIZE, 3)
    summary = services.storage.get_json(keys.summary("local", job_id))
    assert set(summary["pictures"]) == {"contact_sheet.png"}
    assert "The whole job" in services.storage.get_bytes(keys.report("local", job_id)).decode()
    # Seeded: the same spec renders the same pixels. Batched differently, each target starts from its own
    # generator and has its own loss term, so it reaches the same objective and class; its pixels agree only
    # up to float rounding, which Adam's per-element normalisation amplifies over the steps (the batch
    # independence itself is checked exactly in float64, in the optvis tests).
    _, again = _run(local_settings, services, spec)
    _, one_by_one = _run(local_settings, services, {**spec, "batch_size": 1})
    for first, second, third in zip(items, again["items"], one_by_one["items"], strict=True):
        pixels = _image(services, first["outputs"]["image"])
        assert np.array_equal(pixels, _image(services, second["outputs"]["image"]))
        assert third["predictions"][0]["class"] == first["predictions"][0]["class"]
        assert abs(third["objective"] - first["objective"]) <= 0.05 * abs(first["objective"]), (first, third)


def test_inversion_job_strips_and_errors(local_settings: Settings) -> None:
    services = _services(local_settings)
    spec = {
        "kind": "inversion",
        "input": _archive(services),
        "model": TINY,
        "layers": ["features.2", "features.13"],
        "steps": 60,
    }
    job_id, manifest = _run(local_settings, services, spec)
    by_name = {i["name"]: i for i in manifest["items"]}
    assert by_name["broken.png"]["status"] == "failed" and by_name["broken.png"]["error"]
    ok = [i for i in manifest["items"] if i["status"] == "ok"]
    assert len(ok) == 4
    for item in ok:
        assert set(item["outputs"]) == {"layer:features.2", "layer:features.13", "strip", "thumb"}
        assert item["errors"]["features.2"] < item["errors"]["features.13"]
        strip = _image(services, item["outputs"]["strip"])
        assert strip.shape[1] >= 3 * SIZE  # original + two layers side by side
    assert "feature error" in services.storage.get_bytes(keys.report("local", job_id)).decode()


def test_filters_job_grid_and_most_active_channel(local_settings: Settings) -> None:
    services = _services(local_settings)
    spec = {"kind": "filters", "input": _archive(services), "model": TINY, "layers": ["features.2", "features.9"]}
    job_id, manifest = _run(local_settings, services, spec)
    summary = services.storage.get_json(keys.summary("local", job_id))
    grid = _image(services, keys.in_job("local", job_id, summary["pictures"]["first_layer_filters.png"]))
    assert grid.shape[0] > 48 and grid.shape[1] > 48
    item = next(i for i in manifest["items"] if i["name"] == "s0.png")
    layer = item["layers"]["features.9"]
    means = [c["mean"] for c in layer["top_channels"]]
    assert means == sorted(means, reverse=True) and layer["most_active"] == layer["top_channels"][0]["channel"]
    assert {"activations:features.2", "overlay:features.2", "activations:features.9"} <= set(item["outputs"])
    big = next(i for i in manifest["items"] if i["name"] == "big.png")
    assert _image(services, big["outputs"]["overlay:features.9"]).shape == (100, 150, 3)  # the image's own size


def test_deepdream_job_keeps_sizes_and_raises_the_layer(local_settings: Settings) -> None:
    services = _services(local_settings)
    spec = {
        "kind": "deepdream",
        "input": _archive(services),
        "model": TINY,
        "layers": {"features.9": 1.0},
        "steps": 4,
        "octaves": 2,
        "tile_size": 48,
    }
    _, manifest = _run(local_settings, services, spec)
    ok = [i for i in manifest["items"] if i["status"] == "ok"]
    assert len(ok) == 4
    big = next(i for i in ok if i["name"] == "big.png")
    assert big["size"] == [150, 100] and _image(services, big["outputs"]["dream"]).shape == (100, 150, 3)
    for item in ok:
        assert all(o["loss_last"] > o["loss_first"] for o in item["octaves"]), item["octaves"]


def test_a_bad_position_leaves_no_hooks(local_settings: Settings) -> None:
    services = _services(local_settings)
    # The same model object serves every later job of the process: no hook may outlive a failed batch.
    ctx = JobContext(services.storage, ModelCache(local_settings, services.storage), "local", "j", torch.device("cpu"))
    fv = parse_spec(
        {
            "kind": "feature_visualization",
            "model": TINY,
            "targets": [{"layer": "features.6", "channel": 0, "position": [500, 0]}],
            "steps": 2,
        }
    )
    pipeline = FeatureVisualizationPipeline(fv, ctx)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside"):
        pipeline.run_batch(
            [
                Item(
                    0,
                    "t",
                    np.zeros((0, 0, 3), np.uint8),
                    params={"layer": "features.6", "channel": 0, "position": [500, 0]},
                )
            ]
        )
    assert hook_count(ctx.model(fv.model).module) == 0  # type: ignore[union-attr]


def test_dream_presets_resolve_per_model() -> None:
    from types import SimpleNamespace

    from shared.models import ModelRef
    from worker.pipelines.deepdream import DeepDreamPipeline

    ctx = SimpleNamespace(device=torch.device("cpu"))

    def resolved(spec: dict[str, Any], arch: str, preprocessing: str) -> Any:
        parsed = parse_spec({"kind": "deepdream", "input": "upload://u", **spec})
        loaded = SimpleNamespace(ref=ModelRef(arch=arch, preprocessing=preprocessing), module=None)
        return DeepDreamPipeline(parsed, ctx).settings(loaded)  # type: ignore[arg-type]

    notebook = resolved({}, "inception5h", "inception5h")
    assert (notebook.octaves, notebook.steps, notebook.roll, notebook.max_loss) == (4, 10, 32, None)
    assert notebook.layers == (("mixed4c", 1.0),) and torch.allclose(notebook.step_size, torch.tensor(1.5))
    keras = resolved({"preset": "keras"}, "inception_v3", "symmetric")
    assert (keras.octaves, keras.steps, keras.border, keras.max_loss) == (3, 20, 2, 15.0)
    assert torch.allclose(keras.step_size, torch.tensor(0.01))  # the recipe's step in its [-1, 1] input
    assert keras.layers == (("Mixed_6b", 1.0), ("Mixed_6c", 1.5), ("Mixed_6d", 2.0), ("Mixed_6e", 2.5))
    assert resolved({"preset": "keras"}, "inception5h", "inception5h").max_loss is None
    assert resolved({"preset": "keras", "max_loss": 900.0, "steps": 3}, "inception5h", "inception5h").steps == 3
    with pytest.raises(ValueError, match="give 'layers'"):
        resolved({}, "resnet18", "imagenet")
