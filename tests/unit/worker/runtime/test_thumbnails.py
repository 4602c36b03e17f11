"""Thumbnails: made once per item by the worker from the output that stands for it, stored as the item's
``thumb`` output (packed or not), small, and a faithful reduction of that output (compared with PIL's
own resize of it)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from cli.samples import sample_archive
from shared import keys
from shared.kinds import parse_spec
from shared.settings import Settings
from tests.support.images import tar_with_broken_members
from tests.support.runtime import recording_resources
from worker.engine.inprocess import run_job_inprocess
from worker.pipelines.plugin import ReportHooks
from worker.runtime.thumbnails import REUSE_BYTES, SIDE, fits_as_is, small_jpeg


@pytest.mark.parametrize("packed", [False, True])
def test_every_ok_item_has_a_small_thumbnail_of_its_preview(
    local_settings: Settings, tmp_path: Path, packed: bool
) -> None:
    settings = local_settings.model_copy(update={"max_item_bytes": 1_000_000, "shard_items": 4})
    archive = tmp_path / "in.tar"
    tar_with_broken_members(archive, good=3, huge_bytes=1_500_000)  # failed items: no thumbnail
    photos = sample_archive(tmp_path / "photos.tar")  # natural photos: what a thumbnail is judged on
    with tarfile.open(archive, "a") as into, tarfile.open(photos) as source:
        for member in source.getmembers()[:6]:
            into.addfile(member, source.extractfile(member))
    rt = recording_resources(settings)
    rt.services.storage.put_bytes(keys.upload("local", "u1", archive.name), archive.read_bytes())
    spec = parse_spec(
        {"kind": "saliency", "method": "spectral_residual", "input": "upload://u1", "packed_outputs": packed}
    )
    job_id = rt.services.jobs.create("local", spec.kind, spec.model_dump(mode="json"), None).id
    run_job_inprocess(settings, "local", job_id)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as api:
        items = api.get(f"/v1/jobs/{job_id}/results", params={"limit": 100}).json()["items"]
        ok = [item for item in items if item["status"] == "ok"]
        failed = [item for item in items if item["status"] == "failed"]
        assert len(ok) == 9 and failed and all("thumb" not in item["outputs"] for item in failed)
        reused = 0
        for item in ok:
            thumb_bytes, overlay_bytes = (api.get(item["outputs"][name]).content for name in ("thumb", "overlay"))
            if fits_as_is(overlay_bytes):  # a small picture is its own thumbnail: the same object, not a copy
                assert thumb_bytes == overlay_bytes
                reused += 1
                continue
            thumb = Image.open(io.BytesIO(thumb_bytes))
            overlay = Image.open(io.BytesIO(overlay_bytes)).convert("RGB")
            assert thumb.format == "JPEG" and max(thumb.size) <= SIDE
            expected = overlay.copy()
            expected.thumbnail((SIDE, SIDE))
            assert thumb.size == expected.size
            difference = _difference(thumb, expected)
            heatmap = Image.open(io.BytesIO(api.get(item["outputs"]["heatmap"]).content)).convert("RGB")
            heatmap.thumbnail((SIDE, SIDE))
            assert difference < _difference(thumb, heatmap)  # made from the output that stands for the item
            if not item["name"].startswith("good/"):  # a photo (the generated ones are noise)
                assert difference < 4.0, (item["name"], difference)  # the overlay, reduced: JPEG's loss only
        assert reused == 3  # the three small generated pictures; the six photos are reduced


def _difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a.convert("RGB"), np.float32) - np.asarray(b, np.float32)).mean())


def test_a_thumbnail_is_never_enlarged_and_transparency_becomes_white() -> None:
    picture = Image.new("RGBA", (40, 20), (255, 0, 0, 0))
    picture.paste((0, 0, 255, 255), (0, 0, 20, 20))
    out = io.BytesIO()
    picture.save(out, "PNG")
    thumb = Image.open(io.BytesIO(small_jpeg(out.getvalue())))
    assert thumb.size == (40, 20)
    left, right = thumb.getpixel((5, 10)), thumb.getpixel((35, 10))
    assert left[2] > 200 and left[0] < 60 and min(right) > 230


def test_what_stands_for_an_item() -> None:
    hooks = ReportHooks(preview=("overlay", "overlay_rank1"))
    assert hooks.stands_for({"outputs": {"heatmap": "a", "overlay_rank1": "b"}}) == "overlay_rank1"
    assert hooks.stands_for({"outputs": {"heatmap": "a"}}) == "heatmap"
    compared = ReportHooks(preview=("overlay",), panels=lambda item: [("grad_cam", "overlay:grad_cam")])
    assert compared.stands_for({"outputs": {"heatmap:grad_cam": "a", "overlay:grad_cam": "b"}}) == "overlay:grad_cam"
    assert ReportHooks().stands_for({"outputs": {}}) is None


def test_only_a_small_png_or_jpeg_that_fits_is_its_own_thumbnail() -> None:
    def encoded(size: tuple[int, int], fmt: str, noise: bool = False) -> bytes:
        pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels) if noise else Image.new("RGB", size, "red")
        out = io.BytesIO()
        image.save(out, fmt)
        return out.getvalue()

    assert fits_as_is(encoded((64, 64), "PNG")) and fits_as_is(encoded((SIDE, 100), "JPEG"))
    assert not fits_as_is(encoded((SIDE + 1, 10), "PNG"))  # too wide: reduced
    big = encoded((200, 200), "PNG", noise=True)
    assert len(big) > REUSE_BYTES and not fits_as_is(big)  # fits, but too many bytes for a gallery
    assert not fits_as_is(encoded((64, 64), "GIF")) and not fits_as_is(b"not a picture")
