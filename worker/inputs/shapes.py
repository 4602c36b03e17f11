"""The built-in ``shapes`` data set: one object (circle, square, triangle, cross) of random size, colour
and position on a cluttered background, with its bounding box. Generated from a seed, so any worker
makes the same images; a ground truth for localisation (pointing game) comes with every image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle", "cross")


@dataclass
class LabelledImages:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    classes: tuple[str, ...]
    boxes: np.ndarray | None = None  # (N, 4) x0, y0, x1, y1 (exclusive), where known


def make_shapes(count: int, size: int = 64, seed: int = 0) -> LabelledImages:
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, len(CLASSES), size=count)
    boxes = np.empty((count, 4), dtype=np.int64)
    for i in range(count):
        canvas = _clutter(rng, size)
        boxes[i] = _draw(canvas, int(labels[i]), rng, size)
        images[i] = canvas
    return LabelledImages(images, labels.astype(np.int64), CLASSES, boxes)


def _clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random background plus thin random strokes: distractors that are not shapes."""
    base = rng.integers(0, 256, size=(4, 4, 3)).astype(np.float32)
    canvas = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
    canvas = np.clip(canvas * 0.6 + rng.normal(0, 12, size=(size, size, 3)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        p0 = tuple(int(v) for v in rng.integers(0, size, 2))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.line(canvas, p0, p1, colour, 1, lineType=cv2.LINE_AA)
    return canvas


def _draw(canvas: np.ndarray, label: int, rng: np.random.Generator, size: int) -> tuple[int, int, int, int]:
    side = int(rng.integers(size // 4, size // 2))
    x0, y0 = (int(v) for v in rng.integers(1, size - side - 1, 2))
    x1, y1 = x0 + side, y0 + side
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    if max(colour) < 120:  # keep the object visible against the clutter
        colour = (colour[0], colour[1], 255)
    name = CLASSES[label]
    if name == "circle":
        cv2.circle(canvas, (x0 + side // 2, y0 + side // 2), side // 2, colour, -1, lineType=cv2.LINE_AA)
    elif name == "square":
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), colour, -1)
    elif name == "triangle":
        points = np.array([[x0 + side // 2, y0], [x0, y1 - 1], [x1 - 1, y1 - 1]], dtype=np.int32)
        cv2.fillPoly(canvas, [points], colour, lineType=cv2.LINE_AA)
    else:
        bar = max(2, side // 4)
        mid = side // 2
        cv2.rectangle(canvas, (x0, y0 + mid - bar // 2), (x1 - 1, y0 + mid + bar // 2), colour, -1)
        cv2.rectangle(canvas, (x0 + mid - bar // 2, y0), (x0 + mid + bar // 2, y1 - 1), colour, -1)
    return x0, y0, x1, y1


def make_digits() -> LabelledImages:
    """scikit-learn's handwritten digits (1,797 images of 8x8, 16 grey levels), shipped offline."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = np.clip(digits.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    rgb = np.repeat(gray[:, :, :, None], 3, axis=3)
    return LabelledImages(rgb, digits.target.astype(np.int64), tuple(str(i) for i in range(10)))
