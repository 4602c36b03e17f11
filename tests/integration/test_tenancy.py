"""No tenant reaches another's data by any spelling of a key, through any field that takes one: every
spelling is a 422 naming the field at the API (nothing queued), and the worker refuses it again where it
reads, for inputs and for weights alike. Against a real S3 server holding Alice's upload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.errors import InvalidInput
from shared.kinds import KINDS
from shared.settings import Settings
from tests.contract.test_kinds import SPECS
from tests.support.images import png, tar_of
from tests.support.s3 import client as s3_client
from tests.support.s3 import new_bucket
from worker.runtime.sources import checked_location, resolve_input

ALICE, BOB = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}


def spellings(bucket: str, key: str) -> list[str]:
    """Every way we know to write a key that a store might take for ``key`` (tenants/alice/...), and the
    service's other areas (live jobs, unused uploads: other tenants' ids and times)."""
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
        f"s3://{bucket}/tenants./{rest}",
        f"s3://{bucket}/tenants../{rest}",
        f"s3://{bucket}/tenants /{rest}",
        f"s3://{bucket}/tenant\u017f/{rest}",  # long s, which folds to s
        f"s3://{bucket}/\uff54enants/{rest}",  # fullwidth t
        f"s3://{bucket}/tenants\uff0f{rest}",  # fullwidth solidus
        f"s3://{bucket}/x/\uff0e\uff0e/{key}",  # fullwidth dots
        f"s3://{bucket}/x/\u2024\u2024/{key}",  # one-dot leaders
        f"s3://{bucket}/\u200btenants/{rest}",  # zero-width space
        f"s3://{bucket}/\ufefftenants/{rest}",  # byte-order mark
        f"s3://{bucket}/tenants\u00a0/{rest}",  # no-break space
        f"s3://{bucket}/live/",
        f"s3://{bucket}/LIVE/",
        f"s3://{bucket}/uploads-unused/",
        f"s3://{bucket}/uploads-unused./",
    ]


def _with(spec: dict[str, Any], path: tuple[str, ...], value: str) -> dict[str, Any]:
    """A deep copy of ``spec`` with the field at ``path`` set to ``value``."""
    copy = json.loads(json.dumps(spec))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copy


def _uri_fields(kind: str) -> set[tuple[str, ...]]:
    """The paths of every field of the kind's spec that its schema says takes an s3:// URI."""
    schema = KINDS[kind].spec.model_json_schema()
    definitions = schema.get("$defs", {})
    found: set[tuple[str, ...]] = set()

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        if "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        for key in ("anyOf", "allOf", "oneOf"):
            for sub in node.get(key, []):
                walk(sub, path)
        for name, sub in node.get("properties", {}).items():
            if "s3://" in sub.get("description", ""):
                found.add((*path, name))
            walk(sub, (*path, name))

    walk(schema, ())
    return found


def fields(uri: str) -> list[tuple[str, dict[str, Any]]]:
    """Every field of every kind that takes an object-store URI, set to ``uri``: found from each kind's
    schema, on the kind's own contract spec, so a new kind or field is covered without a change here."""
    cases = []
    for kind, examples in SPECS.items():
        base = {"kind": kind, "input": "builtin:shapes", **examples[0]}
        if "input" not in KINDS[kind].spec.model_fields:
            base.pop("input")
        for path in sorted(_uri_fields(kind)):
            parent: Any = base
            for part in path[:-1]:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if isinstance(parent, dict) and "job" not in parent:  # a trained model's weights are its job's
                cases.append((path[0], _with(base, path, uri)))
    return cases


def test_every_field_that_takes_a_uri_is_covered() -> None:
    covered = {(spec["kind"], field) for field, spec in fields("s3://bucket/x.tar")}
    wanted = {(kind, path[0]) for kind in KINDS for path in _uri_fields(kind)}
    assert covered == wanted
    assert {kind for kind, _ in covered} == set(KINDS)  # every kind reads an input or weights by URI


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
    assert refused == len(spellings(bucket, key)) * len(fields(""))


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
