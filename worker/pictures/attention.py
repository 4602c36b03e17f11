"""The attention figure of a caption (Xu et al. 2015, figures 2 and 3): the image, then one panel per
generated word with that word's attention map over the image, word by word.

Each map (the grid of L cells) is upsampled smoothly to the panel and scaled by its own maximum; the
image is shown dark where the model did not look and at full brightness where it did, as in the paper."""

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


def spotlight(image: np.ndarray, attention: np.ndarray, floor: float = 0.3) -> np.ndarray:
    """``image`` (H, W, 3) lit by ``attention`` (h, w), upsampled bicubically and scaled to [0, 1]."""
    height, width = image.shape[:2]
    resized = cv2.resize(attention.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    top = float(resized.max())
    light: np.ndarray = np.clip(resized / top if top > 0 else resized, 0.0, 1.0)
    lit = image.astype(np.float32) * (floor + (1.0 - floor) * light[:, :, None])
    return np.clip(lit + 0.5, 0, 255).astype(np.uint8)


def attention_strip(
    image: np.ndarray, words: list[str], alphas: np.ndarray, *, panel: int = 160, columns: int = 8
) -> np.ndarray:
    """The image, then each word's map over it: rows of ``columns`` panels, each labelled."""
    base = fit(image, panel)
    tiles = [caption(base, "image")]
    tiles += [caption(spotlight(base, alphas[t]), word) for t, word in enumerate(words)]
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
