"""Image decoding with limits: every failure is an ItemError with a reason a person can act on.

Handles grayscale, RGBA/LA (composited on white), palette, CMYK, 16-bit and EXIF-rotated images and
returns an RGB uint8 array. The pixel limit is checked from the header, before any pixel is decoded,
so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from shared.errors import ItemError

Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit (a setting) and report it per item


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int) -> np.ndarray:
    """Decode ``data`` to an RGB uint8 array of shape (H, W, 3)."""
    if not data:
        raise ItemError("empty file (0 bytes)")
    if len(data) > max_bytes:
        raise ItemError(f"file is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image: Image.Image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ItemError("not an image (format not recognised)") from exc
    except Exception as exc:  # PIL raises many types for malformed headers
        raise ItemError(f"unreadable image header (truncated or corrupt): {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ItemError(f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}")
    if width == 0 or height == 0:
        raise ItemError("image has no pixels")
    try:
        image.load()
        image = ImageOps.exif_transpose(image) or image
        return _to_rgb(image)
    except ItemError:
        raise
    except Exception as exc:
        raise ItemError(f"corrupt or truncated image data: {exc}") from exc


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(array.min()), float(array.max())
        gray = ((array - lo) / (hi - lo or 1.0) * 255.0).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA")
    if mode == "CMYK":
        image = image.convert("RGB")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)
