"""Real ImageNet weights through Fovea's own loading path: right classes on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from shared.models import ModelRef
from shared.settings import Settings
from shared.storage.local import LocalStorage
from worker.nets.zoo import preprocess
from worker.runtime.models import ModelCache
from worker.saliency.gradient import gradient_saliency

PHOTOS = {"chelsea": {"tabby", "tiger cat", "Egyptian cat"}, "coffee": {"espresso", "cup", "coffee mug"}}


@pytest.mark.parametrize("preset", ["squeezenet1_1-imagenet", "mobilenet_v2-imagenet"])
def test_predictions_and_maps_on_real_photos(preset: str, assets_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, assets_dir=assets_dir, signing_secret="x")
    cache = ModelCache(settings, LocalStorage(tmp_path / "store", secret=b"x"))
    loaded = cache.get(ModelRef(preset=preset), "local", torch.device("cpu"))
    assert loaded.class_names is not None
    images = [torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1) for name in PHOTOS]
    inputs = preprocess(images, 224, loaded.ref.preprocessing, torch.device("cpu"))
    result = gradient_saliency(loaded.module, inputs)
    for row, (name, accepted) in enumerate(PHOTOS.items()):
        top5 = {loaded.class_names[i] for i in result.logits[row].topk(5).indices.tolist()}
        assert top5 & accepted, (name, top5)
        saliency = result.maps[row].numpy()
        # Not degenerate: finite, not constant, concentrated (the top 10% of pixels hold far more than 10%).
        assert np.isfinite(saliency).all() and saliency.std() > 0
        top = np.sort(saliency.ravel())[::-1]
        assert top[: top.size // 10].sum() / top.sum() > 0.25


def test_loaded_model_is_cached_per_process(assets_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, assets_dir=assets_dir, signing_secret="x")
    cache = ModelCache(settings, LocalStorage(tmp_path / "store", secret=b"x"))
    ref = ModelRef(preset="squeezenet1_1-imagenet")
    assert cache.get(ref, "a", torch.device("cpu")) is cache.get(ref, "b", torch.device("cpu"))


def test_torchvision_weights_come_from_the_local_cache_never_a_download(assets_dir: Path, tmp_path: Path) -> None:
    import safetensors.torch
    import torchvision

    from shared.errors import InvalidInput

    ref = ModelRef(arch="squeezenet1_1", weights="torchvision:DEFAULT", class_names="imagenet")
    settings = Settings(data_dir=tmp_path, torch_home=tmp_path / "torch", assets_dir=assets_dir, signing_secret="x")
    cache = ModelCache(settings, LocalStorage(tmp_path / "store", secret=b"x"))
    with pytest.raises(InvalidInput, match="downloads are off"):
        cache.get(ref, "local", torch.device("cpu"))
    # Put the checkpoint where torchvision's own loader looks, as a previous download would have.
    url = torchvision.models.SqueezeNet1_1_Weights.DEFAULT.url
    cached = tmp_path / "torch" / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    state = safetensors.torch.load_file(str(assets_dir / "weights" / "squeezenet1_1-imagenet.safetensors"))
    torch.save(state, cached)
    loaded = cache.get(ref, "local", torch.device("cpu"))
    reference = cache.get(ModelRef(preset="squeezenet1_1-imagenet"), "local", torch.device("cpu"))
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(loaded.module(x), reference.module(x))


@pytest.mark.parametrize("method", ["smoothgrad", "integrated_gradients", "grad_cam"])
def test_attribution_family_on_real_photos(method: str, assets_dir: Path, tmp_path: Path) -> None:
    from worker.saliency.model_maps import MapOptions, model_maps

    settings = Settings(data_dir=tmp_path, assets_dir=assets_dir, signing_secret="x")
    cache = ModelCache(settings, LocalStorage(tmp_path / "store", secret=b"x"))
    loaded = cache.get(ModelRef(preset="squeezenet1_1-imagenet"), "local", torch.device("cpu"))
    images = [torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1) for name in PHOTOS]
    inputs = preprocess(images, 224, "imagenet", torch.device("cpu"))
    black = preprocess([torch.zeros(3, 1, 1, dtype=torch.uint8)], 224, "imagenet", torch.device("cpu"))
    options = MapOptions(method=method, smoothgrad_samples=8, ig_steps=16, internal_batch_size=16)
    result = model_maps(loaded.module, inputs, None, options, black)
    for row in range(len(PHOTOS)):
        saliency = result.maps[row].numpy()
        assert np.isfinite(saliency).all() and saliency.std() > 0
        if method == "grad_cam":  # coarse by design (a 13x13 layer upsampled): peaked, not flat
            assert saliency.max() > 1.5 * saliency.mean()
        else:
            top = np.sort(saliency.ravel())[::-1]
            assert top[: top.size // 10].sum() / top.sum() > 0.2  # concentrated, not flat


def test_reduced_precision_maps_agree_with_fp32(assets_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, assets_dir=assets_dir, signing_secret="x")
    cache = ModelCache(settings, LocalStorage(tmp_path / "store", secret=b"x"))
    model = cache.get(ModelRef(preset="squeezenet1_1-imagenet"), "local", torch.device("cpu")).module
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]
    images = [torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1) for name in names]
    inputs = preprocess(images, 224, "imagenet", torch.device("cpu"))
    reference = gradient_saliency(model, inputs)
    floors = {"fp16": 0.98, "bf16": 0.95}  # bf16 keeps 8 mantissa bits: about 0.97 is what it reaches
    for precision, floor in floors.items():
        fast = gradient_saliency(model, inputs, precision=precision)
        assert torch.equal(fast.targets, reference.targets), precision
        for row, name in enumerate(names):
            r = np.corrcoef(reference.maps[row].flatten().numpy(), fast.maps[row].flatten().numpy())[0, 1]
            assert r >= floor, (precision, name, r)
    assert all(not isinstance(m, torch.nn.Module) or type(m).__name__ != "_FullPrecision" for m in model.modules())
