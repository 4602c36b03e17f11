"""Where an encoder's grid cells lie in the image, against the centres their layers' geometry gives."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from worker.nets.grid_encoder import GridEncoder, backbone, default_layer
from worker.nets.grid_geometry import cell_centres


def pixels(centres: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(centres) * size


@pytest.mark.parametrize(
    ("layers", "first", "step"),
    [
        # 3x3, stride 2, padding 1: output i is centred on input 2i (pixel 2i spans [2i, 2i + 1)).
        ([nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1)], 0.5, 4.0),
        # 2x2, stride 2: output i covers inputs 2i and 2i + 1, an even division of the image.
        ([nn.Conv2d(3, 4, 2, 2), nn.Conv2d(4, 4, 2, 2)], 2.0, 4.0),
        # Unpadded 3x3 (output j centred on input j + 1), then a 2x2 max pooling: (j, j + 1) -> 2i + 2.
        ([nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.MaxPool2d(2)], 2.0, 2.0),
    ],
)
def test_centres_follow_the_layers_geometry(layers: list[nn.Module], first: float, step: float) -> None:
    xs, ys = cell_centres(nn.Sequential(*layers), 32, None)
    expected = first + step * np.arange(len(xs))
    assert pixels(xs, 32) == pytest.approx(expected, abs=1e-6)
    assert pixels(ys, 32) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("arch", "grid", "first", "step"),
    [
        ("mobilenet_v2", None, 0.5, 16.0),  # half a cell up and left of an even division (8 + 16 i)
        ("mobilenet_v2", 7, 8.5, 32.0),  # pooling 2 x 2 cells averages their centres
        ("resnet18", None, 0.5, 16.0),
        ("squeezenet1_1", None, 15.5, 16.0),  # unpadded: 13 cells, shifted the other way
        ("tiny_cnn", None, 4.0, 8.0),  # 2 x 2 poolings: an even division
        ("inception5h", None, 0.5, 16.0),  # its max poolings are functional calls in the traced graph
    ],
)
def test_zoo_encoders_cells_sit_at_their_receptive_fields_centres(
    arch: str, grid: int | None, first: float, step: float
) -> None:
    size = 64 if arch == "tiny_cnn" else 224
    encoder = GridEncoder(backbone(arch), default_layer(arch), grid, coordinates=False)
    xs, ys = encoder.cell_centres(size)
    assert pixels(xs, size) == pytest.approx(first + step * np.arange(len(xs)), abs=1e-3)
    assert pixels(ys, size) == pytest.approx(pixels(xs, size), abs=1e-3)
    assert encoder.cell_centres(size) is encoder.cell_centres(size)  # measured once
