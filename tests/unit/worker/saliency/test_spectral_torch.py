"""The batched torch spectral residual against OpenCV contrib's implementation, and the object maps."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from worker.saliency.objects import boxes, draw_boxes, object_map, opencv_binary_map
from worker.saliency.spectral import spectral_residual
from worker.saliency.spectral_torch import gray_64, spectral_residual_batch

CPU = torch.device("cpu")


def _rgb(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def _photos() -> dict[str, np.ndarray]:
    """Every 8-bit photo shipped with scikit-image and scikit-learn, and each again at 333, 102 and 77
    pixels wide (small images are where a float grey or another resize showed most)."""
    import glob
    import os

    import cv2
    import skimage.io
    from sklearn.datasets import load_sample_images

    found: dict[str, np.ndarray] = {}
    folder = os.path.dirname(skimage.data.__file__)
    for path in sorted(glob.glob(f"{folder}/*.png") + glob.glob(f"{folder}/*.jpg")):
        image = skimage.io.imread(path)
        if image.dtype != np.uint8:
            continue
        image = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image[:, :, :3]
        found[os.path.basename(path)] = np.ascontiguousarray(image)
    for i, image in enumerate(load_sample_images().images):
        found[f"sklearn-{i}"] = image
    for name, image in list(found.items()):
        for width in (333, 102, 77):
            height = max(8, round(width * image.shape[0] / image.shape[1]))
            found[f"{name}@{width}"] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return found


def test_matches_opencv_on_every_photo_at_the_worst() -> None:
    photos = _photos()
    assert len(photos) >= 100
    ours = spectral_residual_batch([torch.from_numpy(i.copy()).permute(2, 0, 1) for i in photos.values()], CPU)
    worst = 1.0
    for (name, image), mine in zip(photos.items(), ours, strict=True):
        reference = spectral_residual(image)
        assert mine.shape == reference.shape
        r = float(np.corrcoef(reference.ravel(), mine.numpy().ravel())[0, 1])
        worst = min(worst, r)
        assert r >= 0.9999, (name, r)
        assert float(mine.max()) <= 1.0 + 1e-6 and float(mine.min()) >= 0.0
    assert worst >= 0.9999


def test_the_first_steps_are_opencvs_to_the_bit() -> None:
    import cv2

    for name, image in list(_photos().items())[::7]:
        expected = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (64, 64), interpolation=cv2.INTER_LINEAR_EXACT)
        got = gray_64(torch.from_numpy(image.copy()).permute(2, 0, 1)).numpy()
        assert np.array_equal(got.astype(np.uint8), expected), name


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
