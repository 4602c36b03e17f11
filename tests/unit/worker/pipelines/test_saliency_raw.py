"""A raw map is the method's values at the stated grid, not a picture scaled to a maximum of 1."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from shared.kinds import parse_spec
from tests.support.contexts import RecordingContext
from tests.support.images import png
from worker.inputs.decode import decode_image
from worker.nets.zoo import preprocess
from worker.pipelines.base import Item
from worker.pipelines.saliency_method import SaliencyPipeline
from worker.saliency.gradient import gradient_saliency

TINY = {"arch": "tiny_cnn", "num_classes": 4, "input_size": 32, "preprocessing": "unit"}


def test_the_gradient_raw_map_is_the_gradient_at_the_models_input_grid() -> None:
    spec = parse_spec({"kind": "saliency", "method": "gradient", "model": TINY, "raw_map": True, "input": "upload://x"})
    ctx = RecordingContext()
    image = decode_image(png(50, 40, seed=3), max_pixels=10**7, max_bytes=10**7)
    (outcome,) = SaliencyPipeline(spec, ctx).run_batch([Item(0, "a.png", image)])  # type: ignore[arg-type]
    raw = np.load(io.BytesIO(ctx.written[outcome.outputs["raw_map"]]))
    model = ctx.model(spec.model).module  # type: ignore[union-attr]
    x = preprocess([torch.from_numpy(image).permute(2, 0, 1)], 32, "unit", torch.device("cpu"))
    expected = gradient_saliency(model, x).maps[0].numpy()
    assert raw.shape == (32, 32) and outcome.data["raw_map"] == {
        "shape": [32, 32],
        "grid": "model input",
        "dtype": str(raw.dtype),
    }
    np.testing.assert_allclose(raw.astype(np.float32), expected, rtol=2e-3, atol=1e-3 * float(expected.max()))
    assert float(raw.max()) != 1.0  # its own units


@pytest.mark.parametrize("resize", ["squash", "center_crop", "pad"])
def test_every_framing_gives_pictures_of_the_image_and_fields_inside_it(resize: str) -> None:
    from PIL import Image

    model = {**TINY, "resize": resize}
    image = decode_image(png(90, 40, seed=4), max_pixels=10**7, max_bytes=10**7)
    for target in ("predicted", {"layer": "features.6", "channel": 1}):
        spec = parse_spec(
            {"kind": "saliency", "method": "gradient", "model": model, "target": target, "input": "upload://x"}
        )
        ctx = RecordingContext()
        (outcome,) = SaliencyPipeline(spec, ctx).run_batch([Item(0, "a.png", image)])  # type: ignore[arg-type]
        heat = np.asarray(Image.open(io.BytesIO(ctx.written[outcome.outputs["heatmap"]])))
        assert heat.shape == (40, 90, 3)
        if isinstance(target, dict):
            x0, y0, x1, y1 = outcome.data["unit"]["receptive_field"]
            assert 0 <= x0 < x1 <= 90 and 0 <= y0 < y1 <= 40
        if resize == "center_crop":  # nothing was seen outside the crop: nothing is drawn there
            gray = heat.astype(int)
            assert (gray[:, :5] == gray[0, 0]).all() and (gray[:, -5:] == gray[0, 0]).all()
