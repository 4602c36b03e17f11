"""Writing a shard's outputs into packs: one tar per segment, members ``INDEX.NAME.EXT``, stored whole when
the segment is full or the shard ends. Its items are recorded only after that (the caller's part), so an
item on record always points at bytes that are in the store.

The tar is written here, header by header, rather than through ``tarfile.addfile``: a member's place in
the pack must be known as it is added (its reference), and building each header once in the plain
ustar form (pax only for a name too long for it) costs a fraction of what ``tarfile`` spends per member.
Any tar reader reads the result (the tests read it with ``tarfile``).
"""

from __future__ import annotations

import secrets
import tarfile
import tempfile
from typing import Any

from shared import keys
from shared.packs import PackedOutput, member_name
from shared.storage import Storage

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_IN_ONE_PUT = 16 * 1024 * 1024  # what the spool holds in memory anyway


class PackWriter:
    """The open segment of one shard's packed outputs."""

    def __init__(self, storage: Storage, tenant: str, job_id: str, shard: int) -> None:
        self.storage, self.tenant, self.job_id, self.shard = storage, tenant, job_id, shard
        self._key: str | None = None
        self._spool: Any = None
        self.nbytes = 0
        """Bytes of the open segment so far."""

    def add(self, index: int, output: str, data: bytes) -> str:
        """Append one output; returns its reference (the pack's whole key, then where the bytes lie)."""
        if self._spool is None or self._key is None:
            self._key = keys.pack(self.tenant, self.job_id, self.shard, index, secrets.token_hex(4))
            self._spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - closed in seal()
            self.nbytes = 0
        info = tarfile.TarInfo(member_name(index, keys.safe_component(output)))
        info.size, info.mode = len(data), 0o644
        try:
            header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
        except ValueError:  # a name over ustar's 100 bytes
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        offset = self.nbytes + len(header)
        padding = -len(data) % _BLOCK
        self._spool.write(header)
        self._spool.write(data)
        self._spool.write(b"\0" * padding)
        self.nbytes = offset + len(data) + padding
        return PackedOutput(self._key, offset, len(data), info.name).ref

    def seal(self) -> None:
        """Store the open segment (nothing if none is open): the end-of-archive blocks, then the whole tar."""
        if self._spool is None or self._key is None:
            return
        end = self.nbytes + 2 * _BLOCK
        self._spool.write(b"\0" * (2 * _BLOCK + -end % _RECORD))
        self._spool.seek(0)
        if self.nbytes <= _IN_ONE_PUT:  # one request; a multipart upload costs more than it saves here
            self.storage.put_bytes(self._key, self._spool.read(), "application/x-tar")
        else:
            self.storage.put_stream(self._key, self._spool, "application/x-tar")
        self._spool.close()
        self._spool = self._key = None
        self.nbytes = 0

    def discard(self) -> None:
        """Drop the open segment unstored (its items will be done again)."""
        if self._spool is not None:
            self._spool.close()
        self._spool = self._key = None
        self.nbytes = 0
