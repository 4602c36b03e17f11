"""From a saliency map to objects: the thresholded object map S(x) > delta (Hou & Zhang use three
times the mean saliency), its connected components as boxes, and OpenCV's binary map."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive
    area: int  # pixels of the component
    score: float  # mean saliency inside the component

    def as_list(self) -> list[float]:
        return [self.x0, self.y0, self.x1, self.y1, self.area, round(self.score, 4)]


def object_map(saliency: np.ndarray, threshold: float = 3.0) -> np.ndarray:
    """Boolean map of S(x) > threshold * mean(S)."""
    return saliency > threshold * float(saliency.mean())


def boxes(saliency: np.ndarray, mask: np.ndarray, min_area_fraction: float = 0.001) -> list[Box]:
    """Bounding boxes of the 8-connected components of ``mask``, most salient first."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    min_area = max(1, int(min_area_fraction * mask.size))
    found = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < min_area:
            continue
        score = float(saliency[labels == label].mean())
        found.append(Box(x, y, x + w, y + h, area, score))
    return sorted(found, key=lambda b: (-b.score * b.area, b.y0, b.x0))


def opencv_binary_map(saliency: np.ndarray) -> np.ndarray:
    """OpenCV's ``computeBinaryMap``: k-means (5 clusters) on the map, then Otsu. uint8 0/255."""
    detector = cv2.saliency.StaticSaliencySpectralResidual_create()  # type: ignore[attr-defined]
    cv2.setRNGSeed(0)  # its k-means starts from OpenCV's thread RNG: seeded, the same map comes back every time
    ok, binary = detector.computeBinaryMap(np.ascontiguousarray(saliency, dtype=np.float32))
    if not ok:
        raise RuntimeError("OpenCV computeBinaryMap failed")
    return np.asarray(binary, dtype=np.uint8)


def draw_boxes(image_rgb: np.ndarray, found: list[Box], color: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    out = np.ascontiguousarray(image_rgb.copy())
    thickness = max(1, round(max(out.shape[:2]) / 300))
    for box in found:
        cv2.rectangle(out, (box.x0, box.y0), (box.x1 - 1, box.y1 - 1), color, thickness)
    return out
