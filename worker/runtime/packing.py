"""Writing a shard's outputs into packs: one tar per segment, members ``INDEX.NAME``, stored whole when the
segment is full or the shard ends. Its items are recorded only after that (the caller's part), so an item
on record always points at bytes that are in the store."""

from __future__ import annotations

import io
import secrets
import tarfile
import tempfile
from typing import Any

from shared import keys
from shared.packs import PackedOutput, member_name
from shared.storage import Storage


class PackWriter:
    """The open segment of one shard's packed outputs."""

    def __init__(self, storage: Storage, tenant: str, job_id: str, shard: int) -> None:
        self.storage, self.tenant, self.job_id, self.shard = storage, tenant, job_id, shard
        self._key: str | None = None
        self._spool: Any = None
        self._tar: tarfile.TarFile | None = None

    @property
    def nbytes(self) -> int:
        return self._tar.offset if self._tar is not None else 0

    def add(self, index: int, output: str, data: bytes) -> str:
        """Append one output; returns its reference (the pack's whole key, then where the bytes lie)."""
        if self._tar is None:
            self._key = keys.pack(self.tenant, self.job_id, self.shard, index, secrets.token_hex(4))
            self._spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - closed in seal()
            self._tar = tarfile.open(fileobj=self._spool, mode="w")  # noqa: SIM115 - closed in seal()
        assert self._key is not None
        info = tarfile.TarInfo(member_name(index, keys.safe_component(output)))
        info.size = len(data)
        header = info.tobuf(self._tar.format, self._tar.encoding, self._tar.errors)  # what addfile writes first
        offset = self._tar.offset + len(header)
        self._tar.addfile(info, io.BytesIO(data))
        return PackedOutput(self._key, offset, len(data), info.name).ref

    def seal(self) -> None:
        """Store the open segment (nothing if none is open)."""
        if self._tar is None:
            return
        self._tar.close()
        self._spool.seek(0)
        assert self._key is not None
        self.storage.put_stream(self._key, self._spool, "application/x-tar")
        self._spool.close()
        self._tar = self._spool = self._key = None

    def discard(self) -> None:
        """Drop the open segment unstored (its items will be done again)."""
        if self._tar is not None:
            self._spool.close()
        self._tar = self._spool = self._key = None
