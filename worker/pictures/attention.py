"""The attention figure of a caption (Xu et al. 2015, figures 2 and 3): the image, then one panel per
generated word with that word's attention map over the image, word by word.

Each map (the grid of L cells) is upsampled smoothly to the panel, each cell's value placed at the centre
of the cell's receptive field (``GridEncoder.cell_centres``; beyond the outermost centres the map keeps
its edge values), and scaled by its own maximum; the image is shown dark where the model did not look and
at full brightness where it did, as in the paper."""

from __future__ import annotations

import cv2
import numpy as np

from worker.pictures.images import caption, grid


def fit(image: np.ndarray, side: int) -> np.ndarray:
    """The image scaled so that its longer side is ``side``."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


Centres = tuple[np.ndarray, np.ndarray]
"""Each column's x and each row's y centre as fractions of the image."""


def even_centres(rows: int, columns: int) -> Centres:
    """Cells that divide the image evenly (a grid whose cells' fields are centred so, e.g. VGG's)."""
    return (np.arange(columns) + 0.5) / columns, (np.arange(rows) + 0.5) / rows


def upsample(attention: np.ndarray, width: int, height: int, centres: Centres) -> np.ndarray:
    """The (h, w) map as a (height, width) image, bicubic between the cells' centres."""
    xs, ys = centres
    # For every output pixel, its position in cell units (cell i's centre at i), by the measured centres.
    columns = np.interp((np.arange(width) + 0.5) / width, xs, np.arange(len(xs))).astype(np.float32)
    rows = np.interp((np.arange(height) + 0.5) / height, ys, np.arange(len(ys))).astype(np.float32)
    map_x, map_y = np.meshgrid(columns, rows)
    source = attention.astype(np.float32)
    return cv2.remap(source, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def spotlight(image: np.ndarray, attention: np.ndarray, centres: Centres, floor: float = 0.3) -> np.ndarray:
    """``image`` (H, W, 3) lit by ``attention`` (h, w), upsampled bicubically and scaled to [0, 1]."""
    height, width = image.shape[:2]
    resized = upsample(attention, width, height, centres)
    top = float(resized.max())
    light: np.ndarray = np.clip(resized / top if top > 0 else resized, 0.0, 1.0)
    lit = image.astype(np.float32) * (floor + (1.0 - floor) * light[:, :, None])
    return np.clip(lit + 0.5, 0, 255).astype(np.uint8)


def attention_strip(
    image: np.ndarray,
    words: list[str],
    alphas: np.ndarray,
    centres: Centres,
    *,
    panel: int = 160,
    columns: int = 8,
) -> np.ndarray:
    """The image, then each word's map over it: rows of ``columns`` panels, each labelled."""
    base = fit(image, panel)
    tiles = [caption(base, "image")]
    tiles += [caption(spotlight(base, alphas[t], centres), word) for t, word in enumerate(words)]
    return grid(tiles, columns=min(columns, len(tiles)))


def stack(strips: list[np.ndarray], gap: int = 10) -> np.ndarray:
    """Strips one above the other on white, left-aligned, each at its own height."""
    width = max(s.shape[1] for s in strips)
    rows = []
    for strip in strips:
        padded = np.full((strip.shape[0] + gap, width, 3), 255, dtype=np.uint8)
        padded[: strip.shape[0], : strip.shape[1]] = strip
        rows.append(padded)
    return np.concatenate(rows, axis=0)[:-gap]
