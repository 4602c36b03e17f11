"""How an image is fitted into a model's square input, and the geometry that maps model-grid results
(maps, boxes) back onto the image.

- ``squash``: the whole image resized to size x size, aspect not kept (the default: a map covers the whole
  picture and nothing is shrunk; on the photos measured it classified as well as the others, see README);
- ``center_crop``: the shorter side resized to size x 256/224, then the centre size x size cut out (the
  ImageNet weights' own evaluation transform); a map has no values outside the crop;
- ``pad``: the longer side resized to size, the aspect kept, the rest filled with the model's zero input
  (the mean image), so the whole image is seen undistorted and a map still covers all of it.

A framing is an affine map per axis, model = image * scale + offset (in pixel units, pixel centres at
+0.5), which is all that the three need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Resize = Literal["squash", "center_crop", "pad"]
RESIZES: tuple[Resize, ...] = ("squash", "center_crop", "pad")


@dataclass(frozen=True)
class Framing:
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    resized: tuple[int, int]
    """(height, width) of the image once resized, before the crop or the padding."""

    def to_model(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """An image box (x0, y0, x1, y1, exclusive) in the model's grid."""
        x0, y0, x1, y1 = box
        return (
            x0 * self.scale_x + self.offset_x,
            y0 * self.scale_y + self.offset_y,
            x1 * self.scale_x + self.offset_x,
            y1 * self.scale_y + self.offset_y,
        )

    def to_image(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = box
        return (
            (x0 - self.offset_x) / self.scale_x,
            (y0 - self.offset_y) / self.scale_y,
            (x1 - self.offset_x) / self.scale_x,
            (y1 - self.offset_y) / self.scale_y,
        )

    def image_to_grid(self, width: int, height: int, grid: int, size: int) -> np.ndarray:
        """The 2x3 matrix taking pixel (x, y) of the image shown at ``width`` x ``height`` to the position in a
        ``grid`` x ``grid`` map of the model's input of side ``size`` (a layer's map, or the input's own)."""
        image_w, image_h = self.resized[1] / self.scale_x, self.resized[0] / self.scale_y  # original size
        to_grid = grid / size
        sx = self.scale_x * image_w / width * to_grid
        sy = self.scale_y * image_h / height * to_grid
        ox, oy = self.offset_x * to_grid, self.offset_y * to_grid
        # Pixel centres: a pixel's centre u + 0.5 lands on grid coordinate v + 0.5.
        return np.array([[sx, 0.0, ox + 0.5 * sx - 0.5], [0.0, sy, oy + 0.5 * sy - 0.5]], dtype=np.float64)


def framing(width: int, height: int, size: int, resize: Resize) -> Framing:
    if resize == "squash":
        return Framing(size / width, size / height, 0.0, 0.0, (size, size))
    if resize == "center_crop":
        short = round(size * 256 / 224)
        scale = short / min(width, height)
        new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
        return Framing(new_w / width, new_h / height, -((new_w - size) // 2), -((new_h - size) // 2), (new_h, new_w))
    if resize == "pad":
        scale = size / max(width, height)
        new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
        return Framing(new_w / width, new_h / height, (size - new_w) // 2, (size - new_h) // 2, (new_h, new_w))
    raise ValueError(f"unknown resize {resize!r}")


def fit(image: torch.Tensor, size: int, resize: Resize, fill: torch.Tensor) -> torch.Tensor:
    """A float (3, H, W) image (pixel values) as the model's size x size input; ``fill`` (3,) the pixel
    value the padding takes (the one whose model input is zero)."""
    height, width = image.shape[-2:]
    frame = framing(width, height, size, resize)
    resized = F.interpolate(image[None], size=frame.resized, mode="bilinear", align_corners=False, antialias=True)[0]
    if resize == "squash":
        return resized
    if resize == "center_crop":
        y0, x0 = -int(frame.offset_y), -int(frame.offset_x)
        return resized[:, y0 : y0 + size, x0 : x0 + size]
    out = fill.to(resized).reshape(3, 1, 1).expand(3, size, size).clone()
    y0, x0 = int(frame.offset_y), int(frame.offset_x)
    out[:, y0 : y0 + frame.resized[0], x0 : x0 + frame.resized[1]] = resized
    return out
