"""The CLI as a new user meets it: a wrong spec is the API's field-by-field message and exit code 2,
before anything is uploaded; a job's outcome is its exit code (0 all ok, 1 failed, 3 some items failed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main as cli
from cli.client import ApiFailure, Client
from tests.support.images import png, tar_of, tar_with_broken_members


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FOVEA_SIGNING_SECRET", "s")
    archive = tmp_path / "photos.tar"
    tar_of(archive, {f"{i}.png": png(seed=i) for i in range(3)})
    return tmp_path


def _uploads(here: Path) -> list[Path]:
    return [p for p in (here / "data").rglob("*") if p.is_file() and "/uploads/" in str(p)]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["methd=gradient"], "methd: Extra inputs are not permitted"),
        (["batch_size=-1"], "batch_size: Input should be greater than or equal to 1"),
        (["method=gradient", "model.preset=resnet9000"], "model: unknown preset 'resnet9000'"),
        (["kind=teleport"], "kind:"),
    ],
)
def test_a_wrong_spec_is_a_line_per_field_and_exit_2_before_any_upload(
    here: Path, capsys: pytest.CaptureFixture[str], overrides: list[str], expected: str
) -> None:
    args = ["run", "-s", "kind=saliency", "-s", "method=spectral_residual", "-s", f"input={here / 'photos.tar'}"]
    for override in overrides:
        args += ["-s", override]
    assert cli.main(args) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and "tagged-union" not in err, err
    assert _uploads(here) == []  # nothing was copied in for a spec that would be refused


def test_a_missing_input_file_is_named(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", "-s", "kind=saliency", "-s", "method=spectral_residual", "-s", "input=nope.tar"])
    assert code == cli.EXIT_USAGE and "input: no such file: nope.tar" in capsys.readouterr().err


def test_submit_validates_before_it_uploads(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uploaded: list[Path] = []
    monkeypatch.setattr(Client, "upload", lambda self, path: uploaded.append(path) or "upload://x")
    code = cli.main(["submit", "-s", "kind=saliency", "-s", "methd=x", "-s", f"input={here / 'photos.tar'}"])
    assert code == cli.EXIT_USAGE and uploaded == []


def test_the_apis_422_is_exit_2_with_its_fields(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self: Client, spec: dict[str, object], key: str | None = None) -> dict[str, object]:
        raise ApiFailure(422, ["POST /v1/jobs: HTTP 422", "input: upload not found or its bytes were never PUT"])

    monkeypatch.setattr(Client, "submit", refuse)
    code = cli.main(["submit", "-s", "kind=saliency", "-s", "method=spectral_residual", "-s", "input=upload://gone"])
    assert code == cli.EXIT_USAGE and "input: upload not found" in capsys.readouterr().err


def test_exit_codes_tell_a_job_that_failed_from_one_with_failed_items(here: Path) -> None:
    broken = here / "broken.tar"
    tar_with_broken_members(broken, good=3, huge_bytes=10)
    base = ["run", "-s", "kind=saliency", "-s", "method=spectral_residual"]
    assert cli.main([*base, "-s", f"input={here / 'photos.tar'}"]) == cli.EXIT_OK
    assert cli.main([*base, "-s", f"input={broken}"]) == cli.EXIT_ITEMS_FAILED
    gradient = ["run", "-s", "kind=saliency", "-s", "method=grad_cam", "-s", "grad_cam_layer=nope"]
    model = ["-s", 'model={"arch": "tiny_cnn", "num_classes": 3, "input_size": 32}']
    assert cli.main([*gradient, *model, "-s", f"input={here / 'photos.tar'}"]) == cli.EXIT_JOB_FAILED


@pytest.mark.parametrize(
    ("job", "code"),
    [
        ({"status": "succeeded", "progress": {"total": 3, "done": 3, "failed": 0}}, cli.EXIT_OK),
        ({"status": "succeeded", "progress": {"total": 3, "done": 2, "failed": 1}}, cli.EXIT_ITEMS_FAILED),
        ({"status": "failed", "progress": {"total": 3, "done": 0, "failed": 0}}, cli.EXIT_JOB_FAILED),
        ({"status": "canceled", "progress": {"total": 3, "done": 1, "failed": 0}}, cli.EXIT_JOB_FAILED),
    ],
)
def test_submit_wait_and_wait_exit_with_the_jobs_outcome(
    here: Path, monkeypatch: pytest.MonkeyPatch, job: dict[str, object], code: int
) -> None:
    job = {"id": "j_1", **job}
    monkeypatch.setattr(Client, "submit", lambda self, spec, key=None: {"id": "j_1", "status": "queued"})
    monkeypatch.setattr(Client, "wait", lambda self, job_id: job)
    spec = ["-s", "kind=saliency", "-s", "method=spectral_residual", "-s", "input=builtin:shapes"]
    assert cli.main(["submit", *spec]) == cli.EXIT_OK  # without --wait: accepted is success
    assert cli.main(["submit", *spec, "--wait"]) == code
    assert cli.main(["wait", "j_1"]) == code


def test_list_shows_the_newest_job_first_by_default(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def jobs(self: Client, **query: object) -> dict[str, object]:
        asked.append(str(query["order"]))
        return {"items": [], "next_cursor": None}

    monkeypatch.setattr(Client, "jobs", jobs)
    assert cli.main(["list"]) == cli.EXIT_OK and asked == ["newest"]
    assert cli.main(["list", "--order", "oldest"]) == cli.EXIT_OK and asked[-1] == "oldest"
