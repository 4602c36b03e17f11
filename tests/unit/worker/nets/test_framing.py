"""Each way of fitting an image into the model's square input, and the geometry back: a spot of the image
lands where the framing says in the model's input, and a map's peak there lands back on the spot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.nets.framing import RESIZES, framing
from worker.nets.zoo import preprocess
from worker.pictures.images import map_to_image

CPU = torch.device("cpu")


@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize(("width", "height"), [(300, 120), (90, 200), (64, 64)])
def test_a_spot_goes_there_and_back(resize: str, width: int, height: int) -> None:
    size = 64
    image = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0 = int(width * 0.55), int(height * 0.4)  # inside the centre crop of every shape here
    spot = (x0, y0, x0 + max(4, width // 10), y0 + max(4, height // 10))
    image[spot[1] : spot[3], spot[0] : spot[2]] = 255
    frame = framing(width, height, size, resize)  # type: ignore[arg-type]
    x = preprocess([torch.from_numpy(image).permute(2, 0, 1)], size, "unit", CPU, resize)[0]  # type: ignore[arg-type]
    mx0, my0, mx1, my1 = frame.to_model(spot)
    centre = (round((my0 + my1) / 2), round((mx0 + mx1) / 2))
    assert float(x[0, centre[0], centre[1]]) > 0.8, (resize, centre)  # the spot is where the framing says
    if resize == "pad":  # the padding is the model's zero input
        assert float(x[:, 0, 0].abs().max()) == 0.0 or float(x[:, -1, -1].abs().max()) == 0.0
    # A map whose peak sits at the spot's place in the model's grid peaks back on the spot in the image.
    values = np.zeros((size, size), dtype=np.float32)
    values[centre] = 1.0
    shown = map_to_image(values, frame.image_to_grid(width, height, size, size), width, height)
    py, px = np.unravel_index(int(shown.argmax()), shown.shape)
    assert spot[0] - 2 <= px <= spot[2] + 2 and spot[1] - 2 <= py <= spot[3] + 2, (resize, (px, py), spot)
    back = frame.to_image(frame.to_model(spot))
    assert np.allclose(back, spot, atol=1e-6)


def test_center_crop_leaves_the_map_blank_outside_the_crop() -> None:
    frame = framing(300, 100, 64, "center_crop")
    shown = map_to_image(np.ones((64, 64), np.float32), frame.image_to_grid(300, 100, 64, 64), 300, 100)
    assert shown[:, :20].max() == 0.0 and shown[:, -20:].max() == 0.0 and shown[10:90, 140:160].min() > 0.99


def test_squash_is_the_plain_resize_it_always_was() -> None:
    import torch.nn.functional as F

    image = torch.randint(0, 256, (3, 50, 80), dtype=torch.uint8)
    expected = F.interpolate(image.float()[None], size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(preprocess([image], 32, "unit", CPU), expected / 255.0)
