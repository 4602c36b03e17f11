"""Planning's own tar header reader against ``tarfile``, the reference: the same members, names, errors,
offsets and bytes for every format tarfile writes (ustar names split in two, GNU long names, pax headers),
for directories, links, special files, empty and block-sized members; and a cut archive ends with one
failed entry wherever the cut falls inside a member's header or bytes (past the first extended header,
where tarfile reads the rest, a cut header ends the archive without a word, as it always did)."""

from __future__ import annotations

import io
import tarfile

import pytest

from worker.inputs.tar_headers import Blocks, parse
from worker.inputs.tar_index import TarEntry, _with_tarfile, iter_tar

LIMIT = 1500


def _archive(format: int, long_names: bool) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format) as archive:

        def add(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.linkname = kind, len(data), link
            archive.addfile(info, io.BytesIO(data) if data else None)

        add("a.jpg", b"x" * 700)
        add("dir", kind=tarfile.DIRTYPE)
        add("dir/empty.png")
        add("dir/block.png", bytes(range(256)) * 2)  # exactly one block: no padding
        add("dir/two.png", b"y" * 1024)
        add("sub/" * 30 + "split.jpg" if long_names else "sub/plain.jpg", b"z" * 513)  # ustar: prefix + name
        add("link.jpg", kind=tarfile.SYMTYPE, link="a.jpg")
        add("hard.jpg", kind=tarfile.LNKTYPE, link="a.jpg")
        add("fifo", kind=tarfile.FIFOTYPE)
        add("__MACOSX/._a.jpg", b"resource fork")
        add("../escape.jpg", b"e" * 10)
        add("big.jpg", b"b" * (LIMIT + 1))
        add("x" * 150 + ".jpg" if long_names else "last.jpg", b"w" * 99)  # GNU: a long-name header; pax: an x header
        add("tail.jpg", b"t" * 3)
    return buffer.getvalue()


def _read(data: bytes, base: int = 0, *, reference: bool = False) -> list[tuple[object, ...]]:
    """Every entry, each readable member's bytes read while it is the current one (as planning does);
    ``"cut"`` for a member whose bytes the archive does not hold in full (reading it raises, as tarfile's)."""
    if reference:
        entries = _with_tarfile(io.BytesIO(data), base, base, "a.tar", LIMIT, 0)
    else:
        entries = iter_tar(io.BytesIO(data), base, "a.tar", max_bytes=LIMIT)
    return [(e.name, e.error, e.data_offset, e.size, e.next_offset, _bytes(e)) for e in entries]


def _bytes(entry: TarEntry) -> bytes | str | None:
    if entry.error is not None:
        return None
    try:
        return entry.read()
    except tarfile.ReadError:
        return "cut"


@pytest.mark.parametrize("format", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("long_names", [False, True])
def test_every_member_as_tarfile_reads_it(format: int, long_names: bool) -> None:
    if format == tarfile.USTAR_FORMAT and long_names:
        with pytest.raises(ValueError):
            _archive(format, long_names)  # ustar cannot hold a 154-character name
        return
    data = _archive(format, long_names)
    ours, reference = _read(data), _read(data, reference=True)
    assert ours == reference
    names = [row[0] for row in ours]
    assert names[:3] == ["a.jpg", "dir/empty.png", "dir/block.png"] and "dir" not in names
    errors = dict((row[0], row[1]) for row in ours)
    assert "link member" in str(errors["link.jpg"]) and "link member" in str(errors["hard.jpg"])
    assert "not a regular file" in str(errors["fifo"]) and "traversal" in str(errors["../escape.jpg"])
    assert "over the limit" in str(errors["big.jpg"])
    # Resumed at any member's end, the rest is the same as from the start.
    for done, row in enumerate(ours[:-1]):
        offset = int(str(row[4]))
        assert _read(data[offset:], offset) == ours[done + 1 :]


def test_plain_headers_are_read_here_and_extended_ones_left_to_tarfile() -> None:
    plain = _archive(tarfile.GNU_FORMAT, long_names=False)
    assert parse(plain[:512]) is not None
    assert parse(b"\0" * 512) is None and parse(plain[:300]) is None
    corrupt = bytearray(plain[:512])
    corrupt[10] ^= 0x01
    assert parse(bytes(corrupt)) is None
    pax = io.BytesIO()
    with tarfile.open(fileobj=pax, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("é" * 60)  # not ASCII: a pax header carries the name
        archive.addfile(info)
    assert parse(pax.getvalue()[:512]) is None


@pytest.mark.parametrize("long_names", [False, True])
def test_a_cut_archive_ends_with_one_failed_entry_unless_cut_between_members(long_names: bool) -> None:
    data = _archive(tarfile.GNU_FORMAT, long_names)
    full = _read(data)
    boundaries = {0} | {int(str(row[4])) for row in full}
    members_end = max(boundaries)
    with pytest.raises(ValueError, match="not a readable tar archive at byte 0"):
        _read(data[:300])  # the first header cut: not an archive at all
    for cut in range(512, len(data), 61):
        ours = _read(data[:cut])
        good = [row for row in ours if row[4] != -1 and row[5] != "cut"]
        assert good == full[: len(good)]
        broken = len(good) < len(ours)
        if cut >= members_end or cut in boundaries:
            assert not broken, cut
        elif cut not in boundaries and not long_names:  # (past a long name, tarfile reads the rest)
            assert broken and ours[-1][1] is not None and "truncated or corrupt" in str(ours[-1][1]), cut


def test_blocks_read_across_chunks_and_put_back_what_was_read() -> None:
    source = io.BytesIO(bytes(range(256)) * 10_000)
    blocks = Blocks(source)
    assert blocks.read(3) == bytes([0, 1, 2]) and blocks.skip(2_000_000) and blocks.position == 2_000_003
    assert blocks.read(2) == bytes([(2_000_003 + i) % 256 for i in range(2)])
    rest = blocks.rest(b"back")
    assert rest.read(2) == b"ba" and rest.read(3) == b"ck" + bytes([2_000_005 % 256])
    assert len(rest.read()) == 2_560_000 - 2_000_006
    assert not Blocks(io.BytesIO(b"abc")).skip(4)
