"""The attention figure puts each cell's value where the cell's centre is."""

from __future__ import annotations

import cv2
import numpy as np

from worker.pictures.attention import even_centres, upsample


def test_a_cells_value_lands_on_its_centre() -> None:
    grid = np.zeros((14, 14), dtype=np.float32)
    grid[5, 9] = 1.0
    centres = ((16 * np.arange(14) + 0.5) / 224, (16 * np.arange(14) + 0.5) / 224)
    image = upsample(grid, 224, 224, centres)
    row, column = np.unravel_index(int(np.argmax(image)), image.shape)
    assert (row, column) == (16 * 5, 16 * 9)  # the pixel whose span holds 16 i + 0.5
    assert image[row, column] == 1.0


def test_even_centres_upsample_as_a_plain_resize_inside_the_outer_cells() -> None:
    grid = np.random.default_rng(0).random((7, 7)).astype(np.float32)
    resized = cv2.resize(grid, (112, 112), interpolation=cv2.INTER_CUBIC)
    placed = upsample(grid, 112, 112, even_centres(7, 7))
    # Inside the outermost centres both interpolate the same cells; beyond them the figure keeps the edge.
    assert np.abs(resized[8:-8, 8:-8] - placed[8:-8, 8:-8]).max() < 1e-5
