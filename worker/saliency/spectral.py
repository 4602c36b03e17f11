"""Spectral-residual saliency (Hou & Zhang 2007), through OpenCV contrib's reference implementation."""

from __future__ import annotations

import cv2
import numpy as np


def spectral_residual(image_rgb: np.ndarray) -> np.ndarray:
    """Saliency map of an RGB uint8 image: float32 in [0, 1], the image's size.

    OpenCV works on a 64x64 grayscale copy (aspect not kept) and resizes the map back.
    """
    detector = cv2.saliency.StaticSaliencySpectralResidual_create()  # type: ignore[attr-defined]
    ok, saliency = detector.computeSaliency(np.ascontiguousarray(image_rgb[:, :, ::-1]))
    if not ok:
        raise RuntimeError("OpenCV spectral residual failed")
    saliency = np.asarray(saliency, dtype=np.float32)
    top = float(saliency.max())
    return saliency / top if top > 0 else saliency
