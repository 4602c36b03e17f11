"""Top-1 of the shipped ImageNet weights through Fovea's own loading path, for each ``model.resize``
(squash, center_crop, pad), on the photos that ship with scikit-image and scikit-learn and show one
clear ImageNet object. A photo counts as right when the top-1 class is one of the labels listed for it
below (ImageNet has no "temple" or "motorcycle": the classes a person would accept are listed).

    FOVEA_ASSETS_DIR=../shared/data .venv/bin/python bench/resize_top1.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.kinds import parse_spec  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.storage.local import LocalStorage  # noqa: E402
from worker.kinds import map_plugin  # noqa: E402
from worker.pipelines.base import Item  # noqa: E402
from worker.runtime.context import JobContext  # noqa: E402
from worker.runtime.models import ModelCache  # noqa: E402


def photos() -> list[tuple[str, np.ndarray, set[str]]]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    return [
        ("chelsea (cat)", skimage.data.chelsea(), {"Egyptian cat", "tabby", "tiger cat"}),
        ("coffee (espresso)", skimage.data.coffee(), {"espresso"}),
        ("rocket", skimage.data.rocket(), {"missile", "projectile", "space shuttle"}),
        ("stereo_motorcycle (motor scooter)", skimage.data.stereo_motorcycle()[0], {"moped", "motor scooter"}),
        ("china.jpg (temple)", load_sample_image("china.jpg"), {"palace", "stupa", "monastery", "bell cote"}),
        ("flower.jpg (daisy)", load_sample_image("flower.jpg"), {"daisy"}),
    ]


def main() -> None:
    if not os.environ.get("FOVEA_ASSETS_DIR"):
        raise SystemExit("set FOVEA_ASSETS_DIR to the folder holding weights/")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        storage = LocalStorage(Path(tmp) / "store", secret=b"k")
        cache = ModelCache(settings, storage)
        images = photos()
        items = [Item(i, name, image) for i, (name, image, _) in enumerate(images)]
        for preset in ("squeezenet1_1-imagenet", "mobilenet_v2-imagenet"):
            for resize in ("squash", "center_crop", "pad"):
                spec = parse_spec(
                    {
                        "kind": "saliency",
                        "method": "gradient",
                        "model": {"preset": preset, "resize": resize},
                        "input": "builtin:shapes",
                        "top_k": 1,
                    }
                )
                ctx = JobContext(storage, cache, "local", "bench", torch.device("cpu"))
                outcomes = map_plugin("saliency").pipeline(spec, ctx).run_batch(items)
                top1 = [outcome.data["predictions"][0]["label"] for outcome in outcomes]
                right = [label in accepted for label, (_, _, accepted) in zip(top1, images, strict=True)]
                print(
                    json.dumps(
                        {
                            "model": preset,
                            "resize": resize,
                            "top1_right": sum(right),
                            "photos": len(images),
                            "top1": dict(zip([name for name, _, _ in images], top1, strict=True)),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
