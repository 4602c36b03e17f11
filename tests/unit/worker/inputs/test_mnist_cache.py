"""The MNIST cache: the assets' compressed files extracted once into a folder that every worker process
on the machine shares."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from worker.inputs.mnist import FILES, prepare


def fake_assets(root: Path) -> dict[str, bytes]:
    raw = root / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    contents = {name: name.encode() * 200_000 for name in FILES}  # a few MB each: extraction takes a while
    for name, data in contents.items():
        (raw / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    return contents


def test_writers_extracting_at_once_each_leave_the_whole_file(tmp_path: Path) -> None:
    contents = fake_assets(tmp_path / "assets")
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(8) as pool:
        roots = list(pool.map(lambda _: prepare(tmp_path / "assets", cache), range(8)))
    assert roots == [cache] * 8
    extracted = cache / "MNIST" / "raw"
    for name, data in contents.items():
        assert (extracted / name).read_bytes() == data
    assert sorted(p.name for p in extracted.iterdir()) == sorted(FILES)  # no partial file left behind


def test_a_missing_asset_names_the_file(tmp_path: Path) -> None:
    fake_assets(tmp_path / "assets")
    (tmp_path / "assets" / "mnist" / "MNIST" / "raw" / f"{FILES[2]}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=FILES[2]):
        prepare(tmp_path / "assets", tmp_path / "cache")
