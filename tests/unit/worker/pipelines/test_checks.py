"""What is wrong with the job itself fails it at once, on the worker, with the reason (and the model's
valid layer names), before any item: not a "succeeded" job with every item failed."""

from __future__ import annotations

from typing import Any

import pytest
import safetensors.torch

from shared import keys
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.settings import Settings
from worker.engine.inprocess import run_job_inprocess
from worker.nets.tiny import TinyCNN
from worker.runtime.services import Services

TINY = {"arch": "tiny_cnn", "weights": "upload://w", "num_classes": 4, "input_size": 32, "preprocessing": "unit"}


def _fails(settings: Settings, spec: dict[str, Any]) -> str:
    services = Services.from_settings(settings, lambda name, args: None)
    services.storage.put_bytes(
        keys.upload("local", "w", "m.safetensors"), safetensors.torch.save(TinyCNN(4).state_dict())
    )
    from tests.support.images import png, tar_of

    archive = settings.data_dir / "in.tar"
    tar_of(archive, {f"{i}.png": png(seed=i) for i in range(3)})
    services.storage.put_bytes(keys.upload("local", "a", "in.tar"), archive.read_bytes())
    parsed = parse_spec({"input": "upload://a", **spec} if spec["kind"] != "feature_visualization" else spec)
    record = services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None)
    run_job_inprocess(settings, "local", record.id)
    final = services.jobs.get("local", record.id)
    assert final.status == JobStatus.failed, final
    assert not services.storage.exists(keys.plan("local", record.id))  # failed before planning a single item
    return final.error or ""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"kind": "saliency", "method": "grad_cam", "model": TINY, "grad_cam_layer": "layer9"}, "no layer 'layer9'"),
        (
            {"kind": "saliency", "method": "gradient", "model": TINY, "target": {"layer": "features.6", "channel": 99}},
            "has 32 channels",
        ),
        (
            {"kind": "saliency", "method": "gradient", "model": TINY, "target": {"layer": "nope", "channel": 1}},
            "no layer 'nope'",
        ),
        (
            {"kind": "saliency", "method": "gradient", "model": {**TINY, "weights": "upload://missing"}},
            "upload missing not found",
        ),
        ({"kind": "saliency", "method": "gradient", "model": {"preset": "inception5h"}}, "assets"),
        ({"kind": "filters", "model": TINY, "layers": ["features.99"]}, "no layer 'features.99'"),
        ({"kind": "inversion", "model": TINY, "layers": ["features.2", "fc"]}, "no layer 'fc'"),
        ({"kind": "deepdream", "model": TINY}, "give 'layers'"),
        (
            {"kind": "feature_visualization", "model": TINY, "targets": [{"layer": "features.6", "channel": 70}]},
            "channel 70",
        ),
        ({"kind": "saliency", "method": "gradient", "model": {"job": "j_none"}}, "no trained model"),
    ],
)
def test_a_job_that_cannot_run_fails_before_its_items(
    local_settings: Settings, spec: dict[str, Any], expected: str
) -> None:
    settings = local_settings.model_copy(update={"assets_dir": local_settings.data_dir / "no-assets"})
    error = _fails(settings, spec)
    assert expected in error, error
    if "no layer" in expected:
        assert "its layers: features, features.0" in error  # the valid names, to pick from
