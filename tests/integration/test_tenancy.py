"""No tenant reaches another's data by any spelling of a key, through any field that takes one: every
spelling is a 422 naming the field at the API (nothing queued), and the worker refuses it again where it
reads, for inputs and for weights alike. Against a real S3 server holding Alice's upload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.errors import InvalidInput
from shared.settings import Settings
from tests.support.images import png, tar_of
from tests.support.s3 import client as s3_client
from tests.support.s3 import new_bucket
from worker.runtime.sources import checked_location, resolve_input

ALICE, BOB = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}


def spellings(bucket: str, key: str) -> list[str]:
    """Every way we know to write a key that a store might take for ``key`` (tenants/alice/...)."""
    rest = key.removeprefix("tenants/")
    return [
        f"s3://{bucket}/{key}",
        f"s3://{bucket}//{key}",
        f"s3://{bucket}/./{key}",
        f"s3://{bucket}/x/../{key}",
        f"s3://{bucket}/tenants//{rest}",
        f"s3://{bucket}/tenants/./{rest}",
        f"s3://{bucket}/tenants/bob/../{rest}",
        f"s3://{bucket}/tenants%2F{rest}",
        f"s3://{bucket}/%74enants/{rest}",
        f"s3://{bucket}/TENANTS/{rest}",
        f"s3://{bucket}/Tenants/{rest}",
        f"s3://{bucket}/tenants\\{rest}",
        f"s3://{bucket}/tenants/{rest.split('/')[0]}/",
        f"s3://{bucket}/tenants/",
        f"s3://{bucket}/",
    ]


def fields(uri: str) -> list[tuple[str, dict[str, Any]]]:
    """Every field of every kind that takes an object-store URI, set to ``uri``."""
    model = {"arch": "tiny_cnn", "num_classes": 4, "weights": uri}
    return [
        ("input", {"kind": "saliency", "method": "spectral_residual", "input": uri}),
        ("input", {"kind": "inversion", "layers": ["features.2"], "input": uri}),
        ("input", {"kind": "classifier_train", "input": uri}),
        ("model", {"kind": "saliency", "method": "gradient", "model": model, "input": "builtin:shapes"}),
        ("model", {"kind": "feature_visualization", "model": model, "targets": [{"class": 1}]}),
        ("weights", {"kind": "classifier_train", "input": "builtin:shapes", "weights": uri}),
    ]


@pytest.fixture
def setup(tmp_path: Path, moto_endpoint: str) -> Iterator[tuple[TestClient, Settings, str]]:
    bucket = new_bucket(moto_endpoint)
    settings = Settings(
        data_dir=tmp_path / "data",
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=moto_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        api_keys="key-a=alice,key-b=bob",
        signing_secret="s",
    )
    archive = tmp_path / "photos.tar"
    tar_of(archive, {"x.png": png()})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        upload = client.post("/v1/uploads", json={"filename": "photos.tar"}, headers=ALICE).json()
        key = f"tenants/alice/uploads/{upload['id']}/photos.tar"
        s3_client(moto_endpoint).put_object(Bucket=bucket, Key=key, Body=archive.read_bytes())
        yield client, settings, key


def test_no_spelling_of_alices_key_is_accepted_for_any_field(setup: tuple[TestClient, Settings, str]) -> None:
    client, settings, key = setup
    bucket = settings.resolved_storage_url().removeprefix("s3://")
    refused = 0
    for uri in spellings(bucket, key):
        for field, spec in fields(uri):
            response = client.post("/v1/jobs", json=spec, headers=BOB)
            assert response.status_code == 422, (uri, spec, response.text)
            assert response.json()["error"]["fields"][0]["field"].split(".")[0] == field, (uri, response.json())
            refused += 1
    assert client.get("/v1/jobs", headers=BOB).json()["items"] == []  # nothing was queued
    assert refused == 15 * 6


def test_the_worker_refuses_every_spelling_again_where_it_reads(setup: tuple[TestClient, Settings, str]) -> None:
    _client, settings, key = setup
    bucket = settings.resolved_storage_url().removeprefix("s3://")
    for uri in spellings(bucket, key):
        with pytest.raises(InvalidInput):
            checked_location(uri, settings)
        with pytest.raises(InvalidInput):
            resolve_input(uri, "bob", settings, None)  # type: ignore[arg-type]
    # An ordinary object elsewhere in the same service's bucket is not off limits by accident.
    assert checked_location(f"s3://{bucket}/datasets/photos.tar", settings).key == "datasets/photos.tar"
