"""Several saliency methods on the same images in one job: outputs per method, quality per method, the
report's side-by-side comparison, and the job's mean map counted once."""

from __future__ import annotations

import io

import numpy as np
import safetensors.torch
from PIL import Image

from shared import keys
from shared.jobs import JobStatus
from shared.kinds import parse_spec
from shared.settings import Settings
from tests.support.trained import SIZE, shapes_classifier
from worker.engine.inprocess import run_job_inprocess
from worker.runtime.services import Services

TINY = {"arch": "tiny_cnn", "weights": "upload://w", "num_classes": 4, "input_size": SIZE, "preprocessing": "unit"}


def test_three_methods_side_by_side_with_quality_each(local_settings: Settings) -> None:
    services = Services.from_settings(local_settings, lambda name, args: None)
    model, _, _ = shapes_classifier()
    services.storage.put_bytes(keys.upload("local", "w", "m.safetensors"), safetensors.torch.save(model.state_dict()))
    spec = parse_spec(
        {
            "kind": "saliency",
            "input": "builtin:shapes?n=24&seed=3",
            "methods": ["gradient", "grad_cam", "spectral_residual"],
            "model": TINY,
            "signed": True,
        }
    )
    record = services.jobs.create("local", "saliency", spec.model_dump(mode="json"), None)
    run_job_inprocess(local_settings, "local", record.id)
    assert services.jobs.get("local", record.id).status == JobStatus.succeeded
    items = services.storage.get_json(keys.manifest("local", record.id))["items"]
    assert all(item["status"] == "ok" for item in items)
    first = items[0]
    assert {"overlay:gradient", "overlay:grad_cam", "overlay:spectral_residual", "signed:gradient"} <= set(
        first["outputs"]
    )
    assert "signed:grad_cam" not in first["outputs"]  # gradient-only options stay with the gradient
    # No method overwrites another's file (the thumbnail may be a small preview itself, so it is left out).
    pictures = {name: key for name, key in first["outputs"].items() if name != "thumb"}
    assert len(set(pictures.values())) == len(pictures)
    assert set(first["methods"]) == {"gradient", "grad_cam", "spectral_residual"}
    assert "boxes" in first["methods"]["spectral_residual"] and "predictions" in first
    picture = Image.open(
        io.BytesIO(services.storage.get_bytes(keys.in_job("local", record.id, first["outputs"]["overlay:grad_cam"])))
    )
    assert picture.size == (SIZE, SIZE)
    summary = services.storage.get_json(keys.summary("local", record.id))
    by_method = summary["quality_by_method"]
    assert set(by_method) == {"gradient", "grad_cam", "spectral_residual"}
    for method in ("gradient", "grad_cam"):
        assert by_method[method]["items"] == 24
        assert by_method[method]["pointing_game"] > 2 * by_method[method]["pointing_baseline"], by_method
        assert by_method[method]["deletion_auc"] < by_method[method]["random_deletion_auc"]
    assert summary["aggregate"]["items"] == "24"  # the gradient's mean map, each image once
    mean_map = np.load(
        io.BytesIO(services.storage.get_bytes(keys.in_job("local", record.id, summary["aggregate"]["mean_map"])))
    )
    assert mean_map.shape == (SIZE, SIZE)
    report = services.storage.get_bytes(keys.report("local", record.id)).decode()
    assert "Methods compared on the same images" in report and report.count('class="panel"') >= 3 * 20


def test_a_comparison_is_validated_per_method() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs a model"):
        parse_spec({"kind": "saliency", "input": "upload://u", "methods": ["spectral_residual", "grad_cam"]})
    with pytest.raises(ValidationError, match="distinct"):
        parse_spec({"kind": "saliency", "input": "upload://u", "methods": ["spectral_residual", "spectral_residual"]})
    with pytest.raises(ValidationError, match="gradient"):
        parse_spec(
            {
                "kind": "saliency",
                "input": "upload://u",
                "methods": ["spectral_residual", "grad_cam"],
                "model": TINY,
                "signed": True,
            }
        )
