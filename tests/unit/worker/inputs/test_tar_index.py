"""A tar read from any member boundary: offsets point at each member's bytes, a resumed read gives the rest,
compressed archives skip to where planning stopped, and a truncated tail is one failed entry."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from worker.inputs.tar_index import compression, decompressed, iter_tar


def _tar(count: int) -> tuple[bytes, dict[str, bytes]]:
    members = {("deep/" * 25 if i == 3 else "") + f"m{i}.bin": bytes([i]) * (100 * i + 7) for i in range(count)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), members


def test_offsets_point_at_each_members_bytes_and_resuming_gives_the_rest() -> None:
    data, members = _tar(8)
    entries = list(iter_tar(io.BytesIO(data), 0, "a.tar", max_bytes=10**6))
    assert [e.name for e in entries] == list(members)
    for entry in entries:
        assert data[entry.data_offset : entry.data_offset + entry.size] == members[entry.name]
    for done, entry in enumerate(entries):
        rest = list(iter_tar(io.BytesIO(data[entry.next_offset :]), entry.next_offset, "a.tar", max_bytes=10**6))
        assert [e.name for e in rest] == list(members)[done + 1 :]
        assert [e.data_offset for e in rest] == [e.data_offset for e in entries[done + 1 :]]


@pytest.mark.parametrize("count", [1, 6])
def test_a_gzip_archive_skips_to_where_planning_stopped(count: int) -> None:
    data, members = _tar(6)
    packed = gzip.compress(data)
    assert compression(packed[:4]) == "gzip" and compression(data[:4]) is None
    first = list(iter_tar(decompressed(io.BytesIO(packed), "gzip", 0), 0, "a.tgz", max_bytes=10**6))
    stop = first[count - 1].next_offset
    stream = decompressed(io.BytesIO(packed), "gzip", stop)
    rest = [(e.name, e.read()) for e in iter_tar(stream, stop, "a.tgz", max_bytes=10**6)]  # read while current
    assert rest == list(members.items())[count:]


def test_refused_members_and_a_truncated_tail() -> None:
    data, _members = _tar(4)
    entries = list(iter_tar(io.BytesIO(data), 0, "a.tar", max_bytes=200))
    assert [e.error is None for e in entries] == [True, True, False, False]
    assert "over the limit" in str(entries[2].error)
    cut = list(iter_tar(io.BytesIO(data[: entries[2].data_offset + 50]), 0, "cut.tar", max_bytes=10**6))
    assert cut[-1].error is not None and "truncated" in cut[-1].error and cut[-1].next_offset == -1
