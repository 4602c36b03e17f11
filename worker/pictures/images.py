"""Colour-mapped heatmaps and overlays, encoded for storage."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

_COLORMAPS = {
    "inferno": cv2.COLORMAP_INFERNO,
    "jet": cv2.COLORMAP_JET,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "turbo": cv2.COLORMAP_TURBO,
}


def fit_within(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def normalise(saliency: np.ndarray, percentile: float = 100.0) -> np.ndarray:
    """Scale a map to [0, 1] by its maximum, or by a percentile with the rest clipped (gradient maps are
    dominated by a few pixels; clipping the top half-percent, as Captum's visualiser does, shows the
    structure). A zero map stays zero."""
    saliency = np.asarray(saliency, dtype=np.float32)
    if not saliency.size:
        return saliency
    top = float(saliency.max()) if percentile >= 100 else float(np.percentile(saliency, percentile))
    if top <= 0:
        top = float(saliency.max())
    return np.clip(saliency / top, 0.0, 1.0) if top > 0 else np.zeros_like(saliency)


def resize_map(saliency: np.ndarray, width: int, height: int) -> np.ndarray:
    if saliency.shape == (height, width):
        return saliency
    return cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)


def map_to_image(values: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """A map on the model's grid laid onto an image of ``width`` x ``height``: ``matrix`` (2x3) takes each
    image pixel to its place in the map (``Framing.image_to_grid``); bilinear, 0 outside the map."""
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    source = np.ascontiguousarray(values, dtype=np.float32)
    return cv2.warpAffine(source, matrix, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def colorize(saliency01: np.ndarray, colormap: str) -> np.ndarray:
    """RGB uint8 picture of a [0, 1] map."""
    gray = np.clip(saliency01 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if colormap == "gray":
        return np.repeat(gray[:, :, None], 3, axis=2)
    return cv2.applyColorMap(gray, _COLORMAPS[colormap])[:, :, ::-1].copy()


def diverging(signed: np.ndarray, percentile: float = 100.0) -> np.ndarray:
    """RGB picture of a signed map: red where positive, blue where negative, white at zero."""
    scaled = normalise(np.abs(signed), percentile) * np.sign(signed)
    out = np.full(signed.shape + (3,), 255.0, dtype=np.float32)
    positive, negative = np.clip(scaled, 0, 1), np.clip(-scaled, 0, 1)
    out[:, :, 1] -= 255.0 * (positive + negative)  # green fades on both sides
    out[:, :, 2] -= 255.0 * positive  # red remains where positive
    out[:, :, 0] -= 255.0 * negative  # blue remains where negative
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def overlay(image_rgb: np.ndarray, heat_rgb: np.ndarray, alpha: float, saliency01: np.ndarray) -> np.ndarray:
    """The heatmap over the image, opaque where salient and clear where not (weight alpha * map)."""
    weight = (alpha * saliency01)[:, :, None]
    blended = image_rgb.astype(np.float32) * (1.0 - weight) + heat_rgb.astype(np.float32) * weight
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 88) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


_HALF_MAX, _HALF_TINY = 65504.0, 6.2e-5  # float16's largest value, and its smallest at full precision


def raw_values(values: np.ndarray) -> np.ndarray:
    """A map's values as they are, in float16 where float16 holds them (its largest value fits, and values
    down to a thousandth of it stay at full precision), else in float32."""
    values = np.asarray(values, dtype=np.float32)
    top = float(np.abs(values).max()) if values.size else 0.0
    return values.astype(np.float16) if top == 0.0 or _HALF_TINY * 1e3 <= top <= _HALF_MAX else values


def encode_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def grid(tiles: list[np.ndarray], columns: int = 4, gap: int = 6) -> np.ndarray:
    """Tiles (RGB, any sizes) in rows of ``columns`` on white, each cell as large as the largest tile."""
    height = max(t.shape[0] for t in tiles)
    width = max(t.shape[1] for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    cols = min(columns, len(tiles))
    out = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        y, x = (i // columns) * (height + gap), (i % columns) * (width + gap)
        out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return out


def caption(tile: np.ndarray, text: str, height: int = 20) -> np.ndarray:
    """The tile with a strip of dark text above it."""
    strip = np.full((height, tile.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (2, height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (30, 30, 30), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)
