"""Archive readers: every member once, unsafe members refused with a reason, truncation reported."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.images import png, tar_of, tar_with_broken_members, zip_of
from worker.inputs.archive import iter_members, unsafe_reason


def read(path: Path, max_bytes: int = 1_000_000) -> list:  # type: ignore[type-arg]
    with path.open("rb") as stream:
        return list(iter_members(stream, path.name, max_bytes=max_bytes))


def test_tar_members_and_broken_kinds(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    expected = tar_with_broken_members(path, good=5, huge_bytes=2_000_000)
    members = read(path)
    names = [m.name for m in members]
    assert len(names) == 5 + len(expected)
    by_name = {m.name: m for m in members}
    for name in ("../escape.png", "/etc/absolute.png", "broken/link.png", "broken/hardlink.png", "broken/huge.png"):
        assert by_name[name].error and expected[name] in by_name[name].error, (name, by_name[name].error)
        assert by_name[name].data is None
    assert all(by_name[f"good/img{i:04d}.{'png' if i % 2 else 'jpg'}"].data for i in range(5))


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".zip"])
def test_formats_are_detected_by_content(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    members = {"a/1.png": png(seed=1), "b/2.png": png(seed=2)}
    (zip_of if suffix == ".zip" else tar_of)(path, members)
    renamed = path.rename(tmp_path / "no-extension")
    assert {m.name: m.data for m in read(renamed)} == members


def test_zip_unsafe_names(tmp_path: Path) -> None:
    path = tmp_path / "z.zip"
    zip_of(path, {"../up.png": png(), "ok.png": png(), "/abs.png": png()})
    errors = {m.name: m.error for m in read(path)}
    assert errors["ok.png"] is None
    assert "traversal" in (errors["../up.png"] or "")
    assert "absolute" in (errors["/abs.png"] or "")


def test_truncated_tar_keeps_members_before_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "t.tar"
    tar_of(path, {f"{i}.png": png(seed=i, width=200, height=200) for i in range(6)})
    data = path.read_bytes()
    members = list(iter_members(io.BytesIO(data[: len(data) // 2]), "t.tar", max_bytes=1_000_000))
    assert 1 <= len([m for m in members if m.data]) < 6
    assert "truncated" in (members[-1].error or "")


def test_not_an_archive_is_a_job_level_error() -> None:
    with pytest.raises(ValueError, match="not a tar"):
        list(iter_members(io.BytesIO(b"just some text" * 100), "notes.bin", max_bytes=100))


def test_unsafe_reason() -> None:
    assert unsafe_reason("a/b.png") is None
    assert unsafe_reason("a/../../b.png")
    assert unsafe_reason("C:/win.png")


class _ReadOnlyStream:
    """A stream that can only be read forward, like an S3 body or a pipe: no seek, no tell."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_tar_is_read_in_one_forward_pass(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"s{suffix}"
    members = {f"{i}.png": png(seed=i) for i in range(20)}
    tar_of(path, members)
    stream = _ReadOnlyStream(path.read_bytes())
    found = {m.name: m.data for m in iter_members(stream, path.name, max_bytes=1_000_000)}  # type: ignore[arg-type]
    assert found == members
