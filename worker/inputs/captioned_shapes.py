"""The built-in ``captioned_shapes`` set: scenes of 1-3 shapes (kind, colour, size) on clutter, each with
the caption that describes it and every noun's object box, so that a captioner's attention can be checked
against the truth (no public caption set is offline here).

Objects are named from left to right; between neighbours the caption says "left of", or "above" /
"below" when they are further apart vertically than horizontally ("a small red circle left of a blue
square above a large green cross"). Size words: "small" and "large"; medium shapes have none. Layouts
whose relation would be ambiguous (nearly diagonal neighbours, overlapping boxes) are drawn again, so
every scene has exactly one right caption. Generated from a seed and a stream number: any worker makes
the same scenes, and training, validation, test and apply jobs use distinct streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

KINDS = ("circle", "square", "triangle", "cross")
COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (235, 215, 40)}
SIZES = {"small": (0.17, 0.21), "": (0.25, 0.29), "large": (0.34, 0.38)}  # side as a share of the scene

STREAMS = {"train": 0, "val": 1, "test": 2, "apply": 3}


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (S, S, 3) uint8
    caption: str
    objects: list[dict[str, Any]]  # in caption order: {"word", "colour", "size", "box": [x0, y0, x1, y1]}

    @property
    def truth(self) -> dict[str, Any]:
        return {"references": [self.caption], "objects": self.objects}


def make_scenes(count: int, size: int = 128, seed: int = 0, stream: str = "train") -> list[Scene]:
    rng = np.random.default_rng([seed, STREAMS[stream]])
    return [_scene(rng, size) for _ in range(count)]


def _scene(rng: np.random.Generator, size: int) -> Scene:
    count = int(rng.integers(1, 4))
    while True:
        objects = [_object(rng, size) for _ in range(count)]
        objects.sort(key=lambda o: (o["box"][0] + o["box"][2]) / 2)
        relations = _relations(objects, size)
        if relations is not None:
            break
    canvas = _clutter(rng, size)
    for obj in objects:
        _draw(canvas, obj)
    words = _phrase(objects[0])
    for relation, obj in zip(relations, objects[1:], strict=True):
        words += [relation, *_phrase(obj)]
    return Scene(canvas, " ".join(words), objects)


def _object(rng: np.random.Generator, size: int) -> dict[str, Any]:
    size_word = list(SIZES)[int(rng.integers(0, len(SIZES)))]
    low, high = SIZES[size_word]
    side = int(round(size * rng.uniform(low, high)))
    x0, y0 = (int(v) for v in rng.integers(1, size - side - 1, 2))
    return {
        "word": KINDS[int(rng.integers(0, len(KINDS)))],
        "colour": list(COLOURS)[int(rng.integers(0, len(COLOURS)))],
        "size": size_word or "medium",
        "box": [x0, y0, x0 + side, y0 + side],
    }


def _relations(objects: list[dict[str, Any]], size: int) -> list[str] | None:
    """The relation words between neighbours (left to right), or None when the layout is ambiguous."""
    margin = max(2, size // 32)
    for i, a in enumerate(objects):
        for b in objects[i + 1 :]:
            ax0, ay0, ax1, ay1 = a["box"]
            bx0, by0, bx1, by1 = b["box"]
            if ax0 < bx1 + margin and bx0 < ax1 + margin and ay0 < by1 + margin and by0 < ay1 + margin:
                return None  # overlapping or touching
    out = []
    for a, b in zip(objects, objects[1:], strict=False):
        dx = (b["box"][0] + b["box"][2] - a["box"][0] - a["box"][2]) / 2
        dy = (b["box"][1] + b["box"][3] - a["box"][1] - a["box"][3]) / 2
        if dx < 0.08 * size or 0.7 < abs(dy) / dx < 1.4:
            return None  # order or relation not clear at a glance
        out.append("left of" if abs(dy) < dx else ("above" if dy > 0 else "below"))
    return out


def _phrase(obj: dict[str, Any]) -> list[str]:
    size_word = [] if obj["size"] == "medium" else [obj["size"]]
    return ["a", *size_word, obj["colour"], obj["word"]]


def _clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth, muted background with thin grey strokes: texture that is not a shape or a named colour."""
    base = rng.integers(70, 170, size=(4, 4, 1)).astype(np.float32) + rng.normal(0, 10, size=(4, 4, 3))
    canvas = cv2.resize(base.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    canvas = np.clip(canvas + rng.normal(0, 8, size=(size, size, 3)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        p0 = tuple(int(v) for v in rng.integers(0, size, 2))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        grey = int(rng.integers(40, 220))
        cv2.line(canvas, p0, p1, (grey, grey, grey), 1, lineType=cv2.LINE_AA)
    return canvas


def _draw(canvas: np.ndarray, obj: dict[str, Any]) -> None:
    x0, y0, x1, y1 = obj["box"]
    side, colour = x1 - x0, COLOURS[obj["colour"]]
    if obj["word"] == "circle":
        cv2.circle(canvas, (x0 + side // 2, y0 + side // 2), side // 2, colour, -1, lineType=cv2.LINE_AA)
    elif obj["word"] == "square":
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), colour, -1)
    elif obj["word"] == "triangle":
        points = np.array([[x0 + side // 2, y0], [x0, y1 - 1], [x1 - 1, y1 - 1]], dtype=np.int32)
        cv2.fillPoly(canvas, [points], colour, lineType=cv2.LINE_AA)
    else:
        bar, mid = max(2, side // 3), side // 2
        cv2.rectangle(canvas, (x0, y0 + mid - bar // 2), (x1 - 1, y0 + mid + bar // 2), colour, -1)
        cv2.rectangle(canvas, (x0 + mid - bar // 2, y0), (x0 + mid + bar // 2, y1 - 1), colour, -1)
