"""The zip directory reader against ``zipfile`` itself: every compression method, zip64, data descriptors,
UTF-8 names; and what a broken member says."""

from __future__ import annotations

import io
import zipfile

import pytest

from worker.inputs.zip_directory import ZipFormatError, iter_entries, locate_directory, read_member


def _entries(data: bytes) -> list[tuple[object, int]]:
    directory = locate_directory(lambda start, length: data[start : start + length], len(data))
    stream = io.BytesIO(data)
    stream.seek(directory.offset)
    return list(iter_entries(stream, directory.entries))


def _member(data: bytes, row: list[int], limit: int = 10**7) -> bytes:
    stream = io.BytesIO(data)
    stream.seek(row[0])
    return read_member(stream, row, limit)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
@pytest.mark.parametrize("zip64", [False, True])
def test_every_member_reads_as_zipfile_reads_it(method: int, zip64: bool) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for i in range(30):
            payload = bytes(range(256)) * i + f"member {i}".encode() * 50
            with archive.open(f"photos/é{i:02d}.bin", "w", force_zip64=zip64) as handle:
                handle.write(payload)
        archive.writestr("photos/", b"")
    data = buffer.getvalue()
    entries = _entries(data)
    reference = zipfile.ZipFile(io.BytesIO(data))
    assert [entry.name for entry, _ in entries] == [info.filename for info in reference.infolist()]  # type: ignore[attr-defined]
    for entry, _length in entries:
        if entry.is_dir:  # type: ignore[attr-defined]
            continue
        assert _member(data, entry.as_row()) == reference.read(entry.name)  # type: ignore[attr-defined]


def test_resuming_at_any_entry_gives_the_rest() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(10):
            archive.writestr(f"{i}.txt", f"{i}" * 100)
    data = buffer.getvalue()
    directory = locate_directory(lambda start, length: data[start : start + length], len(data))
    all_names = [entry.name for entry, _ in _entries(data)]
    offset = directory.offset
    for done, (_entry, length) in enumerate(_entries(data)):
        offset += length
        stream = io.BytesIO(data)
        stream.seek(offset)
        rest = [entry.name for entry, _ in iter_entries(stream, directory.entries - done - 1)]
        assert rest == all_names[done + 1 :]


def test_members_written_with_data_descriptors_read_from_the_directory_sizes() -> None:
    class Unseekable(io.RawIOBase):  # zipfile writes data descriptors when it cannot seek back
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, chunk: bytes) -> int:  # type: ignore[override]
            self.data += chunk
            return len(chunk)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
        for i in range(5):
            archive.writestr(f"{i}.txt", f"line {i}\n" * 200)
    data = bytes(sink.data)
    for entry, _ in _entries(data):
        assert entry.flags & 0x8  # type: ignore[attr-defined]
        assert _member(data, entry.as_row()) == zipfile.ZipFile(io.BytesIO(data)).read(entry.name)  # type: ignore[attr-defined]


def test_broken_members_and_archives_say_why() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("a.txt", b"hello world" * 10)
    data = bytearray(buffer.getvalue())
    ((entry, _),) = _entries(bytes(data))
    row = entry.as_row()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="over the limit"):
        _member(bytes(data), row, limit=10)
    data[row[0] + 30 + len("a.txt")] ^= 0xFF  # flip a byte of the stored data
    with pytest.raises(ValueError, match="CRC"):
        _member(bytes(data), row)
    with pytest.raises(ZipFormatError, match="end-of-central-directory"):
        locate_directory(lambda start, length: b"not a zip"[start : start + length], 9)
    truncated = bytes(data[: len(data) // 2])
    with pytest.raises(ZipFormatError):
        locate_directory(lambda start, length: truncated[start : start + length], len(truncated))
