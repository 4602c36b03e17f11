"""CUDA workers hold models, and receive batches, in channels_last (``zoo.prefers_channels_last``). CI has
no GPU, so that path is taken here on the CPU through the worker's own code (the model cache, the
kinds' pipelines and their preprocessing): every map and render must equal the usual layout's."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from shared import keys
from shared.kinds import parse_spec
from shared.settings import Settings
from shared.storage.local import LocalStorage
from worker.inputs.decode import decode_image
from worker.kinds import map_plugin
from worker.nets import zoo
from worker.pipelines.base import Item
from worker.runtime.context import JobContext
from worker.runtime.models import ModelCache

LAYERS = {"squeezenet1_1": "features.9", "resnet18": "layer2", "tiny_cnn": "features.6"}
CPU = torch.device("cpu")


def _noise_png(width: int, height: int, seed: int) -> bytes:
    """Noise without flat regions. A flat patch (the usual test picture's bright square) gives equal
    activations at several places, and which of equal maxima a max pool's gradient goes to is the
    kernel's choice: the contiguous and the channels_last kernels choose differently on some CPUs, so a
    model with a global max pool (tiny_cnn) would differ by that choice, not by its layout's arithmetic."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _run(tmp_path: Path, arch: str, extra: dict[str, Any]) -> tuple[dict[str, bytes], torch.nn.Module]:
    storage = LocalStorage(tmp_path / "store", secret=b"x")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        weights = zoo.build(arch, 10).state_dict()
    storage.put_bytes(keys.upload("t", "w", "m.safetensors"), safetensors.torch.save(weights))
    model = {"arch": arch, "weights": "upload://w", "num_classes": 10, "input_size": 64, "preprocessing": "unit"}
    spec = parse_spec({"input": "upload://x", "model": model, **extra})
    cache = ModelCache(Settings(data_dir=tmp_path, signing_secret="x"), storage)
    ctx = JobContext(storage, cache, "t", "j", CPU)
    pipeline = map_plugin(spec.kind).pipeline(spec, ctx)
    items = [
        Item(i, f"{i}.png", decode_image(_noise_png(70, 50, seed=i), max_pixels=10**7, max_bytes=10**7))
        for i in range(2)
    ]
    outcomes = pipeline.run_batch(items)
    written = {name: storage.get_bytes(key) for o in outcomes for name, key in o.outputs.items()}
    return written, ctx.model(spec.model).module  # type: ignore[attr-defined]


def _decoded(data: bytes) -> np.ndarray:
    if data.startswith(b"\x93NUMPY"):
        return np.load(io.BytesIO(data)).astype(np.float32)
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32)


def _compare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arch: str, extra: dict[str, Any], tolerance: float = 2e-3
) -> None:
    usual, usual_model = _run(tmp_path / "usual", arch, extra)
    monkeypatch.setattr(zoo, "prefers_channels_last", lambda device: True)
    last, last_model = _run(tmp_path / "last", arch, extra)
    conv = next(m for m in last_model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last), "the model cache did not convert it"
    assert set(usual) == set(last)
    for name in usual:
        a, b = _decoded(usual[name]), _decoded(last[name])
        if usual[name].startswith(b"\x93NUMPY"):  # raw values: close to the float precision
            assert float(np.abs(a - b).max()) <= tolerance * max(float(np.abs(a).max()), 1e-12), (extra, name)
        else:  # 8-bit pictures: a level of rounding here and there, through colour maps
            assert float(np.abs(a - b).mean()) <= 0.5, (extra, name)


@pytest.mark.parametrize("arch", list(LAYERS))
def test_saliency_maps_are_the_same_in_channels_last(
    arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for method in ("gradient", "integrated_gradients", "grad_cam"):
        extra = {"kind": "saliency", "method": method, "ig_steps": 4, "raw_map": True}
        _compare(tmp_path / method, monkeypatch, arch, extra)
        monkeypatch.undo()
    unit = {"kind": "saliency", "method": "gradient", "target": {"layer": LAYERS[arch], "channel": 1}, "raw_map": True}
    _compare(tmp_path / "unit", monkeypatch, arch, unit)


def test_renders_and_dreams_are_the_same_in_channels_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inversion = {"kind": "inversion", "layers": ["features.6"], "steps": 5}
    _compare(tmp_path / "inversion", monkeypatch, "tiny_cnn", inversion)
    monkeypatch.undo()
    dream = {"kind": "deepdream", "layers": {"features.6": 1.0}, "octaves": 2, "steps": 3, "tile_size": 0}
    _compare(tmp_path / "dream", monkeypatch, "tiny_cnn", dream)
