"""Where a saliency map goes on its image: the model-grid map laid back through the image's framing, a
unit's receptive field in image pixels, and the picture of that field beside its gradient."""

from __future__ import annotations

import numpy as np

from worker.nets.framing import Framing, framing
from worker.pictures import images as render
from worker.pipelines.base import Item, LoadedModel


def frame_of(item: Item, loaded: LoadedModel) -> Framing:
    height, width = item.image.shape[:2]
    return framing(width, height, loaded.ref.input_size, loaded.ref.resize)


def on_image(values: np.ndarray, frame: Framing, width: int, height: int) -> np.ndarray:
    """A map on the model's input grid, laid onto the image shown at ``width`` x ``height``."""
    grid = values.shape[0]
    return render.map_to_image(values, frame.image_to_grid(width, height, grid, grid), width, height)


def field_in_image(box: tuple[int, int, int, int] | None, shape: tuple[int, ...], frame: Framing) -> list[int] | None:
    """A box in the model's input grid -> image pixels, clipped to the image."""
    if box is None:
        return None
    height, width = shape[0], shape[1]
    fx0, fy0, fx1, fy1 = frame.to_image(box)
    x0, y0 = min(max(0, int(fx0)), width - 1), min(max(0, int(fy0)), height - 1)
    return [x0, y0, min(width, max(x0 + 1, round(fx1))), min(height, max(y0 + 1, round(fy1)))]


def receptive_field_picture(image: np.ndarray, saliency: np.ndarray, box: list[int], colormap: str) -> np.ndarray:
    """The image inside the unit's receptive field beside the gradient there (``saliency`` at the image's
    size), both 160 px tall."""
    x0, y0, x1, y1 = box
    heat = render.colorize(render.normalise(saliency, 99.5), colormap)
    crops = [image[y0:y1, x0:x1], heat[y0:y1, x0:x1]]
    scale = 160 / max(1, y1 - y0)
    target_w = max(1, round((x1 - x0) * scale))
    resized = [render.resize_map(crop, target_w, 160) for crop in crops]
    gap = np.full((160, 4, 3), 255, dtype=np.uint8)
    return np.concatenate([resized[0], gap, resized[1]], axis=1)
