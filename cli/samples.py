"""The bundled sample archive: real photographs that ship with scikit-image."""

from __future__ import annotations

import tarfile
from pathlib import Path

SAMPLE_FILES = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "camera.png",
    "coins.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "retina.jpg",
    "motorcycle_left.png",
    "color.png",
    "logo.png",
    "horse.png",
    "page.png",
    "text.png",
    "brick.png",
    "grass.png",
    "gravel.png",
)


def sample_archive(target: Path) -> Path:
    """Write a tar of scikit-image's sample photos (colour, grayscale, RGBA, 1-bit) to ``target``."""
    import skimage.data

    source = Path(skimage.data.__file__).parent
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w") as archive:
        for name in SAMPLE_FILES:
            path = source / name
            if path.is_file():
                archive.add(path, arcname=f"samples/{name}")
    return target
