"""Image decoding: every mode becomes RGB correctly; every broken file becomes an ItemError with a reason."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from shared.errors import ItemError
from tests.support.images import bomb_png, jpeg, png
from worker.inputs.decode import decode_image

LIMITS = {"max_pixels": 50_000_000, "max_bytes": 10_000_000}


def encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_rgb_png_round_trips_exactly() -> None:
    data = png(seed=3)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(decode_image(data, **LIMITS), expected)


def test_grayscale_becomes_three_equal_channels() -> None:
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 3, mode="L")
    out = decode_image(encode(gray), **LIMITS)
    assert out.shape == (8, 8, 3)
    assert np.array_equal(out[:, :, 0], out[:, :, 2])
    assert out[0, 1, 0] == 3


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    out = decode_image(encode(Image.fromarray(values)), **LIMITS)
    assert out[0, 1, 0] == 255 and out[0, 0, 0] == 0
    assert 126 <= out[1, 0, 0] <= 129  # mid-grey, not saturated white


def test_rgba_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    out = decode_image(encode(rgba), **LIMITS)
    assert (out == 255).all()


def test_palette_and_cmyk() -> None:
    palette = Image.new("P", (6, 6), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert tuple(decode_image(encode(palette), **LIMITS)[0, 0]) == (10, 200, 30)
    cmyk = Image.new("CMYK", (6, 6), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_image(encode(cmyk, "TIFF"), **LIMITS)
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 60


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(encode(image, "JPEG", exif=exif.tobytes()), **LIMITS)
    assert out.shape[:2] == (30, 10)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"hello, not an image", "not an image"),
        (jpeg(64, 64)[:300], "truncated"),
        (bomb_png(8000), "over the limit"),
        (png() + b"\0" * 10_000_001, "over the limit"),
    ],
    ids=["zero-bytes", "not-image", "truncated", "bomb", "too-many-bytes"],
)
def test_broken_inputs_name_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ItemError, match=reason):
        decode_image(data, **LIMITS)
