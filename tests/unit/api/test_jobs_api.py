"""The HTTP contract on the embedded settings: validation, auth, tenants, idempotency, cancel, limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from tests.support.images import png, tar_of

KEYS = {"Authorization": "Bearer key-a"}
OTHER = {"Authorization": "Bearer key-b"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys="key-a=alice,key-b=bob",
        signing_secret="s",
        max_direct_upload_bytes=200_000,
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def upload(client: TestClient, headers: dict[str, str], tmp_path: Path) -> str:
    archive = tmp_path / "a.tar"
    tar_of(archive, {"x.png": png()})
    created = client.post("/v1/uploads", json={"filename": "a.tar"}, headers=headers)
    assert created.status_code == 201
    put = client.put(httpx.URL(created.json()["put_url"]).raw_path.decode(), content=archive.read_bytes())
    assert put.status_code == 201, put.text
    return str(created.json()["uri"])


def test_submit_read_list_cancel(client: TestClient, tmp_path: Path) -> None:
    uri = upload(client, KEYS, tmp_path)
    spec = {"kind": "saliency", "input": uri, "method": "spectral_residual", "name": "first"}
    created = client.post("/v1/jobs", json=spec, headers=KEYS)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["progress"] == {"total": None, "done": 0, "failed": 0}
    assert client.get(f"/v1/jobs/{job['id']}", headers=KEYS).json()["name"] == "first"
    listing = client.get("/v1/jobs", params={"status": "queued", "kind": "saliency"}, headers=KEYS).json()
    assert [j["id"] for j in listing["items"]] == [job["id"]]
    assert client.get("/v1/jobs", params={"status": "succeeded"}, headers=KEYS).json()["items"] == []
    queued = client.get(f"/v1/jobs/{job['id']}/results", headers=KEYS).json()  # a snapshot: nothing planned yet
    assert (queued["final"], queued["planned"], queued["total"], queued["items"]) == (False, False, 0, [])
    canceled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=KEYS)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = client.post(f"/v1/jobs/{job['id']}/cancel", headers=KEYS)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_a_cancel_whose_record_was_not_written_completes_on_the_next_one(client: TestClient, tmp_path: Path) -> None:
    spec = {"kind": "saliency", "input": upload(client, KEYS, tmp_path), "method": "spectral_residual"}
    job = client.post("/v1/jobs", json=spec, headers=KEYS).json()
    jobs = client.app.state.fovea.jobs  # type: ignore[attr-defined]
    jobs.coordinator.set_status(job["id"], "canceled")  # the status changed, then the store failed the record
    assert client.get(f"/v1/jobs/{job['id']}", headers=KEYS).json()["status"] == "queued"  # as last recorded
    again = client.post(f"/v1/jobs/{job['id']}/cancel", headers=KEYS)
    assert again.status_code == 200 and again.json()["status"] == "canceled", again.text
    shown = client.get(f"/v1/jobs/{job['id']}", headers=KEYS).json()
    assert shown["status"] == "canceled" and shown["finished_at"] is not None


def test_pagination(client: TestClient, tmp_path: Path) -> None:
    uri = upload(client, KEYS, tmp_path)
    ids = [
        client.post(
            "/v1/jobs", json={"kind": "saliency", "input": uri, "method": "spectral_residual"}, headers=KEYS
        ).json()["id"]
        for _ in range(5)
    ]
    first = client.get("/v1/jobs", params={"limit": 2}, headers=KEYS).json()
    second = client.get("/v1/jobs", params={"limit": 10, "cursor": first["next_cursor"]}, headers=KEYS).json()
    assert [j["id"] for j in first["items"] + second["items"]] == ids and second["next_cursor"] is None


def test_tenants_never_see_each_other(client: TestClient, tmp_path: Path) -> None:
    uri = upload(client, KEYS, tmp_path)
    job = client.post(
        "/v1/jobs", json={"kind": "saliency", "input": uri, "method": "spectral_residual"}, headers=KEYS
    ).json()
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/results"):
        response = client.get(path, headers=OTHER)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=OTHER).status_code == 404
    assert client.get("/v1/jobs", headers=OTHER).json()["items"] == []
    # Bob cannot use Alice's upload either.
    stolen = client.post(
        "/v1/jobs", json={"kind": "saliency", "input": uri, "method": "spectral_residual"}, headers=OTHER
    )
    assert stolen.status_code == 422 and stolen.json()["error"]["fields"][0]["field"] == "input"


def test_auth(client: TestClient) -> None:
    assert client.get("/v1/jobs").status_code == 401  # keys configured: loopback needs one too
    response = client.get("/v1/jobs", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert client.get("/healthz").status_code == 200


def test_idempotent_resubmission(client: TestClient, tmp_path: Path) -> None:
    uri = upload(client, KEYS, tmp_path)
    spec = {"kind": "saliency", "input": uri, "method": "spectral_residual"}
    headers = {**KEYS, "Idempotency-Key": "abc"}
    first = client.post("/v1/jobs", json=spec, headers=headers)
    second = client.post("/v1/jobs", json=spec, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"] and second.headers["Idempotent-Replayed"] == "true"
    assert len(client.get("/v1/jobs", headers=KEYS).json()["items"]) == 1
    changed = client.post("/v1/jobs", json={**spec, "top_k": 3}, headers=headers)
    assert changed.status_code == 409
    other_tenant = client.post("/v1/jobs", json=spec, headers={**OTHER, "Idempotency-Key": "abc"})
    assert other_tenant.status_code == 422  # Bob's own key space; and Alice's upload is not his


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"kind": "teleport"}, "kind"),
        ({"method": "magic"}, "method"),
        ({"method": "gradient"}, "body"),  # gradient without a model
        ({"method": "gradient", "model": {"arch": "not_a_net"}}, "model"),
        ({"method": "gradient", "model": {"arch": "resnet18", "weights": "http://evil/x.pt"}}, "model"),
        ({"method": "gradient", "model": {"preset": "squeezenet1_1-imagenet"}, "target": 1000}, "body"),
        ({"top_k": 0}, "top_k"),
        (
            {
                "method": "gradient",
                "model": {"preset": "squeezenet1_1-imagenet"},
                "target": {"layer": "features.9", "channel": [1, 1]},
            },
            "target",
        ),
        (
            {
                "method": "grad_cam",
                "model": {"preset": "squeezenet1_1-imagenet"},
                "target": {"layer": "x", "channel": 0},
            },
            "body",
        ),
        ({"method": "gradient", "model": {"preset": "squeezenet1_1-imagenet"}, "target": {"top_k": 0}}, "target"),
        ({"method": "smoothgrad", "model": {"preset": "squeezenet1_1-imagenet"}, "signed": True}, "body"),
        ({"overlay_alpha": 1.5}, "overlay_alpha"),
        ({"input": "http://example.com/a.tar"}, "input"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_specs_are_422_naming_the_field(client: TestClient, patch: dict[str, object], field: str) -> None:
    spec = {"kind": "saliency", "input": "upload://u_x", "method": "spectral_residual", **patch}
    response = client.post("/v1/jobs", json=spec, headers=KEYS)
    assert response.status_code == 422, response.text
    fields = [f["field"] for f in response.json()["error"]["fields"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert client.get("/v1/jobs", headers=KEYS).json()["items"] == []  # nothing queued


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "classifier_train", "input": "builtin:cifar"}, "input"),
        ({"kind": "classifier_train", "input": "builtin:shapes", "arch": "gpt"}, "arch"),
        ({"kind": "classifier_train", "input": "builtin:shapes", "epochs": 0}, "epochs"),
        ({"kind": "saliency", "input": "upload://u", "model": {"job": "j_1", "arch": "resnet18"}}, "model"),
        ({"kind": "feature_visualization", "targets": []}, "targets"),
        ({"kind": "feature_visualization", "targets": [{"class": 5000}]}, "targets"),
        ({"kind": "feature_visualization", "targets": [{"layer": "mixed4a", "channel": -1}]}, "targets"),
        ({"kind": "feature_visualization", "targets": [{"class": 1}], "preset": "fancy"}, "preset"),
        ({"kind": "feature_visualization", "targets": [{"class": 1}], "input": "upload://u"}, "input"),
        ({"kind": "inversion", "input": "upload://u"}, "layers"),
        ({"kind": "filters", "input": "upload://u", "layers": []}, "layers"),
        ({"kind": "deepdream", "input": "upload://u", "octave_scale": 0.5}, "octave_scale"),
        ({"kind": "deepdream", "input": "upload://u", "model": {"preset": "nope"}}, "model"),
        ({"kind": "captioning_train", "input": "builtin:coco"}, "input"),
        ({"kind": "captioning_train", "input": "builtin:captioned_shapes", "encoder": {"preset": "x"}}, "encoder"),
        ({"kind": "captioning_train", "input": "builtin:captioned_shapes", "attention": "stochastic"}, "attention"),
        ({"kind": "caption", "input": "upload://u"}, "model"),
        ({"kind": "caption", "input": "upload://u", "model": {"job": "j_1"}, "beam_size": 0}, "beam_size"),
    ],
)
def test_bad_training_specs_are_422(client: TestClient, spec: dict[str, object], field: str) -> None:
    response = client.post("/v1/jobs", json=spec, headers=KEYS)
    assert response.status_code == 422, response.text
    assert any(f["field"].startswith(field) for f in response.json()["error"]["fields"])


def test_a_render_job_needs_no_input(client: TestClient) -> None:
    spec = {"kind": "feature_visualization", "targets": [{"class": 425}, {"layer": "mixed4a", "channel": [1, 2]}]}
    response = client.post("/v1/jobs", json=spec, headers=KEYS)
    assert response.status_code == 201, response.text
    stored = client.get(f"/v1/jobs/{response.json()['id']}", headers=KEYS).json()["spec"]
    assert stored["model"]["arch"] == "inception5h" and stored["preset"] == "robust"
    assert stored["targets"][0] == {"class": 425}  # the name users write, not the Python attribute


def test_training_job_is_accepted(client: TestClient) -> None:
    response = client.post("/v1/jobs", json={"kind": "classifier_train", "input": "builtin:shapes"}, headers=KEYS)
    assert response.status_code == 201 and response.json()["kind"] == "classifier_train"


def test_a_caption_job_needs_a_captioner(client: TestClient) -> None:
    classifier = client.post("/v1/jobs", json={"kind": "classifier_train", "input": "builtin:shapes"}, headers=KEYS)
    spec = {"kind": "caption", "input": "builtin:captioned_shapes?n=10", "model": {"job": classifier.json()["id"]}}
    response = client.post("/v1/jobs", json=spec, headers=KEYS)
    assert response.status_code == 422, response.text
    fields = response.json()["error"]["fields"]
    assert fields[0]["field"] == "model.job" and "needs a captioner" in fields[0]["message"], fields
    trainer = client.post(
        "/v1/jobs", json={"kind": "captioning_train", "input": "builtin:captioned_shapes"}, headers=KEYS
    )
    response = client.post("/v1/jobs", json={**spec, "model": {"job": trainer.json()["id"]}}, headers=KEYS)
    assert response.status_code == 201, response.text


def test_upload_limits_are_413(client: TestClient) -> None:
    too_big = client.post("/v1/uploads", json={"filename": "a.tar", "size": 10**15}, headers=KEYS)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
    direct = client.put("/v1/uploads/u_mine/a.tar", content=b"x" * 300_000, headers=KEYS)
    assert direct.status_code == 413
    small = client.put("/v1/uploads/u_mine/a.tar", content=b"x" * 1000, headers=KEYS)
    assert small.status_code == 201 and small.json()["uri"] == "upload://u_mine"


def test_signed_upload_url_is_refused_when_tampered(client: TestClient) -> None:
    created = client.post("/v1/uploads", json={"filename": "a.tar"}, headers=KEYS).json()
    path = httpx.URL(created["put_url"]).raw_path.decode()
    assert client.put(path.replace("a.tar", "b.tar"), content=b"x").status_code == 403
    assert client.put(path.replace("signature=", "signature=0"), content=b"x").status_code == 403


def test_openapi_documents_the_contract(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in (
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/results",
        "/v1/uploads",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in schema["paths"], path
    assert "SaliencySpec" in schema["components"]["schemas"]


def test_newest_first_pagination(client: TestClient, tmp_path: Path) -> None:
    uri = upload(client, KEYS, tmp_path)
    spec = {"kind": "saliency", "input": uri, "method": "spectral_residual"}
    ids = [client.post("/v1/jobs", json=spec, headers=KEYS).json()["id"] for _ in range(5)]
    first = client.get("/v1/jobs", params={"limit": 2, "order": "newest"}, headers=KEYS).json()
    rest = client.get(
        "/v1/jobs", params={"limit": 10, "order": "newest", "cursor": first["next_cursor"]}, headers=KEYS
    ).json()
    assert [j["id"] for j in first["items"] + rest["items"]] == ids[::-1] and rest["next_cursor"] is None


def test_an_upload_no_job_uses_is_swept_and_a_used_one_is_kept(client: TestClient, tmp_path: Path) -> None:
    import time

    from shared import keys
    from worker.engine.reconcile import sweep_uploads
    from worker.runtime.services import Services

    state = client.app.state.fovea  # type: ignore[attr-defined]
    used = upload(client, KEYS, tmp_path).removeprefix("upload://")
    unused = upload(client, KEYS, tmp_path).removeprefix("upload://")
    spec = {"kind": "saliency", "input": f"upload://{used}", "method": "spectral_residual"}
    assert client.post("/v1/jobs", json=spec, headers=KEYS).status_code == 201
    services = Services(state.settings, state.storage, state.coordinator, lambda name, args: None)
    assert sweep_uploads(services, time.time()) == []  # nothing old enough yet
    swept = sweep_uploads(services, time.time() + state.settings.upload_ttl_s + 1)
    assert len(swept) == 1 and unused in swept[0]
    assert list(state.storage.list(keys.uploads_prefix("alice", unused))) == []
    assert list(state.storage.list(keys.uploads_prefix("alice", used)))  # a job uses it: kept


def test_builtin_inputs_take_a_size_in_range(client: TestClient) -> None:
    trainer = client.post(
        "/v1/jobs", json={"kind": "captioning_train", "input": "builtin:captioned_shapes"}, headers=KEYS
    )
    spec = {"kind": "caption", "model": {"job": trainer.json()["id"]}}
    for uri in ("builtin:captioned_shapes?size=64&n=3", "builtin:captioned_shapes?n=3&seed=4&size=48"):
        response = client.post("/v1/jobs", json={**spec, "input": uri}, headers=KEYS)
        assert response.status_code == 201, (uri, response.text)
    for uri in ("builtin:captioned_shapes?n=3&size=999", "builtin:captioned_shapes?size=16", "builtin:shapes?size=x"):
        response = client.post("/v1/jobs", json={**spec, "input": uri}, headers=KEYS)
        assert response.status_code == 422, (uri, response.text)
        assert response.json()["error"]["fields"][0]["field"] == "input", response.text
