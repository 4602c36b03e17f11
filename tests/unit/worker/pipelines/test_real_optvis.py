"""Feature visualisation and DeepDream with real ImageNet weights, through Fovea's own loading path."""

from __future__ import annotations

from pathlib import Path

import pytest
import skimage.data
import torch

from shared.models import ModelRef
from shared.settings import Settings
from shared.storage.local import LocalStorage
from worker.nets.zoo import normalize, preprocess
from worker.optvis import objectives
from worker.optvis import transforms as T
from worker.optvis.param import FFTImage
from worker.optvis.render import RenderSettings, render
from worker.runtime.models import LoadedModel, ModelCache

CPU = torch.device("cpu")


def _load(preset: str, assets_dir: Path, tmp_path: Path) -> LoadedModel:
    settings = Settings(data_dir=tmp_path, assets_dir=assets_dir, signing_secret="x")
    return ModelCache(settings, LocalStorage(tmp_path / "store", secret=b"x")).get(ModelRef(preset=preset), "t", CPU)


def test_inception5h_recognises_real_photos(assets_dir: Path, tmp_path: Path) -> None:
    loaded = _load("inception5h", assets_dir, tmp_path)
    assert loaded.class_names is not None and len(loaded.class_names) == 1008
    photos = {"chelsea": {"Egyptian cat", "tabby, tabby cat", "tiger cat"}, "coffee": {"espresso", "cup"}}
    images = [torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1) for name in photos]
    with torch.no_grad():
        logits = loaded.module(preprocess(images, 224, loaded.ref.preprocessing, CPU))
    for row, (name, accepted) in enumerate(photos.items()):
        assert loaded.class_names[int(logits[row].argmax())] in accepted, name


@pytest.mark.parametrize(
    ("preset", "classes"),
    # goldfish, flamingo, pizza in torchvision order; goldfish, flamingo in inception5h's labels file
    [("squeezenet1_1-imagenet", [1, 130, 963]), ("inception5h", [450, 425])],
)
def test_rendered_class_images_are_classified_as_their_class(
    preset: str, classes: list[int], assets_dir: Path, tmp_path: Path
) -> None:
    loaded = _load(preset, assets_dir, tmp_path)
    generator = torch.Generator().manual_seed(0)
    param = FFTImage(len(classes), 128, 128, generator=generator, device=CPU)
    settings = RenderSettings(steps=48, learning_rate=0.05, min_size=224)
    result = render(
        loaded.module,
        objectives.class_logit(classes),
        param,
        settings,
        preprocessing=loaded.ref.preprocessing,
        generators=[torch.Generator().manual_seed(i) for i in range(len(classes))],
        transform=T.standard(),
    )
    with torch.no_grad():
        seen = torch.nn.functional.interpolate(result.images, size=(224, 224), mode="bilinear", align_corners=True)
        probabilities = loaded.module(normalize(seen * 255.0, loaded.ref.preprocessing)).softmax(dim=1)
    assert probabilities.argmax(dim=1).tolist() == classes
    assert (probabilities[torch.arange(len(classes)), classes] > 0.9).all(), probabilities.max(dim=1)
