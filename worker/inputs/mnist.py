"""The real MNIST, read with torchvision's own loader from the operator's assets folder.

The assets keep torchvision's raw layout compressed (``mnist/MNIST/raw/*-ubyte.gz``, read-only);
``torchvision.datasets.MNIST(root, download=False)`` wants the extracted files, so they are gunzipped
once into a cache folder (what its download step would have done), then read by torchvision.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def prepare(assets: Path, cache: Path) -> Path:
    """A torchvision root holding the extracted MNIST files (made once); raises FileNotFoundError."""
    source = assets / "mnist" / "MNIST" / "raw"
    target = cache / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        extracted = target / name
        if extracted.exists():
            continue
        packed = source / f"{name}.gz"
        if not packed.is_file():
            raise FileNotFoundError(f"MNIST file {packed} is missing from the assets folder")
        # A name of its own for each writer: workers on one machine share the cache and may extract the
        # same file at once; each renames its complete copy into place, and the last rename wins.
        with tempfile.NamedTemporaryFile(dir=target, prefix=f"{name}.", suffix=".partial", delete=False) as dst:
            partial = Path(dst.name)
            try:
                with gzip.open(packed, "rb") as src:
                    shutil.copyfileobj(src, dst)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        partial.replace(extracted)  # never a half-written file for the next reader
    return cache


@lru_cache(maxsize=2)
def load_mnist(assets: Path, cache: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) int64): the 60,000 training or 10,000 test digits."""
    from torchvision.datasets import MNIST

    data = MNIST(str(prepare(assets, cache)), train=train, download=False)
    return data.data.numpy().astype(np.uint8), data.targets.numpy().astype(np.int64)
