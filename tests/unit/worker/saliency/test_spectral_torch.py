"""The batched torch spectral residual against OpenCV contrib's implementation, and the object maps."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from worker.saliency.objects import boxes, draw_boxes, object_map, opencv_binary_map
from worker.saliency.spectral import spectral_residual
from worker.saliency.spectral_torch import spectral_residual_batch

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "camera", "coins"]


def _rgb(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def test_matches_opencv_on_natural_photos_in_one_batch() -> None:
    images = [_rgb(name) for name in PHOTOS]
    ours = spectral_residual_batch([torch.from_numpy(i).permute(2, 0, 1) for i in images], torch.device("cpu"))
    for name, image, mine in zip(PHOTOS, images, ours, strict=True):
        reference = spectral_residual(image)
        assert mine.shape == reference.shape
        r = np.corrcoef(reference.ravel(), mine.numpy().ravel())[0, 1]
        assert r >= 0.99, (name, r)
        assert float(mine.max()) <= 1.0 + 1e-6 and float(mine.min()) >= 0.0


def test_batch_results_do_not_depend_on_neighbours() -> None:
    images = [torch.from_numpy(_rgb(n)).permute(2, 0, 1) for n in ("coffee", "rocket")]
    alone = spectral_residual_batch(images[:1], torch.device("cpu"))[0]
    together = spectral_residual_batch(images, torch.device("cpu"))[0]
    torch.testing.assert_close(alone, together)


def test_object_map_and_boxes_find_the_odd_patch() -> None:
    rng = np.random.default_rng(1)
    image = np.full((120, 160, 3), 120, dtype=np.uint8) + rng.integers(0, 5, (120, 160, 3), dtype=np.uint8)
    image[30:50, 100:124] = 250
    saliency = spectral_residual_batch([torch.from_numpy(image).permute(2, 0, 1)], torch.device("cpu"))[0].numpy()
    mask = object_map(saliency)
    found = boxes(saliency, mask)
    assert found, "no object found"
    best = found[0]
    assert best.x0 <= 112 <= best.x1 and best.y0 <= 40 <= best.y1  # the patch's centre is inside
    assert mask.mean() < 0.2
    drawn = draw_boxes(image, found[:1])
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_opencv_binary_map_is_binary(name: str) -> None:
    binary = opencv_binary_map(spectral_residual(_rgb(name)))
    assert set(np.unique(binary).tolist()) <= {0, 255} and 0 < binary.mean() < 255
