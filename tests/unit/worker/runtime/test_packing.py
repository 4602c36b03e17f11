"""A pack is a tar any reader reads, and each reference points at its output's bytes in it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from shared.packs import pack_paths, parse_ref
from shared.storage.local import LocalStorage
from worker.runtime.packing import PackWriter


def test_references_point_at_the_bytes_of_a_readable_tar(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store", secret=b"k")
    writer = PackWriter(storage, "t", "j_1", 3)
    outputs = {
        (7, "overlay.jpg"): b"\xff\xd8" + bytes(range(256)) * 3,
        (7, "heatmap.png"): b"",
        (8, "x" * 95 + ".npy"): b"long name" * 1000,  # past ustar's 100 bytes: a pax header
        (9, "boxes.jpg"): b"b" * 512,
    }
    paths = {key: writer.add(key[0], key[1], data) for key, data in outputs.items()}
    refs = {key: parse_ref(path) for key, path in paths.items()}
    writer.seal()
    pack = {ref.pack for ref in refs.values() if ref is not None}
    assert len(pack) == 1
    assert pack_paths([*paths.values(), "outputs/00000007/plain.png"]) == pack  # the finaliser's cheap reading
    data = storage.get_bytes(pack.pop())
    assert len(data) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar}  # type: ignore[union-attr]
    for (index, name), content in outputs.items():
        ref = refs[(index, name)]
        assert ref is not None and ref.member == f"{index:08d}.{name}"
        assert members[ref.member] == content == data[ref.offset : ref.offset + ref.size]
    writer.seal()  # nothing open: nothing stored
    assert len(list(storage.list("tenants/"))) == 1
