"""The autoencoder specs at the API: bad fields are 422s naming the field, and an apply job must name an
autoencoder_train job of the same tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings

KEYS = {"Authorization": "Bearer key-a"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", api_keys="key-a=alice", signing_secret="s")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"architecture": "multimodal"}, "attributes"),
        ({"architecture": "dense", "attributes": "class"}, "attributes"),
        ({"architecture": "multimodal", "attributes": "sidecar"}, "attributes"),  # MNIST has no sidecars
        ({"architecture": "resnet"}, "architecture"),
        ({"input": "builtin:cifar"}, "input"),
        ({"code_size": 1}, "code_size"),
        ({"loss": "hinge"}, "loss"),
        ({"noise_factor": 0}, "noise_factor"),
        ({"conv_channels": [16, 0]}, "conv_channels"),
        ({"architecture": "conv", "code_size": 2}, "body"),
        ({"architecture": "conv", "input_size": 30}, "body"),
        ({"architecture": "linear", "loss": "bce"}, "body"),
        ({"architecture": "dense", "l1_weight": 1e-4}, "body"),
    ],
)
def test_bad_autoencoder_specs_are_422_naming_the_field(
    client: TestClient, patch: dict[str, object], field: str
) -> None:
    spec = {"kind": "autoencoder_train", "input": "builtin:mnist", **patch}
    response = client.post("/v1/jobs", json=spec, headers=KEYS)
    assert response.status_code == 422, response.text
    fields = response.json()["error"]["fields"]
    assert any(f["field"] == field for f in fields), fields
    if field == "body":  # a rule across fields: the message names the field it is about
        assert any(name in fields[0]["message"] for name in ("code_size", "input_size", "loss", "l1_weight"))


def test_apply_needs_an_autoencoder_training_job(client: TestClient) -> None:
    training = client.post("/v1/jobs", json={"kind": "autoencoder_train", "input": "builtin:mnist"}, headers=KEYS)
    classifier = client.post("/v1/jobs", json={"kind": "classifier_train", "input": "builtin:shapes"}, headers=KEYS)
    assert training.status_code == 201 and classifier.status_code == 201
    spec = {"kind": "autoencoder_apply", "input": "builtin:shapes", "model": {"job": classifier.json()["id"]}}
    wrong = client.post("/v1/jobs", json=spec, headers=KEYS)
    assert wrong.status_code == 422 and wrong.json()["error"]["fields"][0]["field"] == "model.job"
    assert "autoencoder_train" in wrong.json()["error"]["message"]
    spec["model"] = {"job": training.json()["id"]}
    assert client.post("/v1/jobs", json=spec, headers=KEYS).status_code == 201
