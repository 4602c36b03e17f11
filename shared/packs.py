"""Packed outputs: one tar per shard segment holding its items' outputs (the WebDataset habit: members named
``INDEX.NAME``), so a job of a million items writes thousands of objects, not millions.

An output in a pack is named, in manifests and results, by a reference: the pack's path in the job's
folder, then where the output's bytes lie in it and the member's name:
``packs/000003/00000192-5f3a9c.tar#1536+20480:00000200.overlay.jpg``. Reading one output is then a single
range read; reading a whole pack is one object.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass

from shared.storage import Storage

_REF = re.compile(r"^(?P<path>[^#]+\.tar)#(?P<offset>\d+)\+(?P<size>\d+):(?P<member>[^/#]+)$")


@dataclass(frozen=True)
class PackedOutput:
    pack: str
    """The pack's path, relative to the job's folder (or a whole key, as the caller used it)."""
    offset: int
    size: int
    member: str
    """The tar member's name: ``INDEX.NAME`` (``00000200.overlay.jpg``)."""

    @property
    def ref(self) -> str:
        return f"{self.pack}#{self.offset}+{self.size}:{self.member}"

    @property
    def content_type(self) -> str:
        return mimetypes.guess_type(self.member)[0] or "application/octet-stream"


def member_name(index: int, output: str) -> str:
    return f"{index:08d}.{output}"


def parse_ref(path: str) -> PackedOutput | None:
    """The packed output a path names, or None for a plain file's path."""
    if "#" not in path:  # never in a plain file's path (keys are made of safe components): the common case
        return None
    found = _REF.match(path)
    if found is None:
        return None
    return PackedOutput(found["path"], int(found["offset"]), int(found["size"]), found["member"])


def pack_paths(paths: Iterable[str]) -> set[str]:
    """The packs these output paths point into, read cheaply (the part before ``#``): a superset of what
    ``parse_ref`` would name, which is the safe side for telling packs in use from packs to delete."""
    return {path.partition("#")[0] for path in paths if "#" in path}


def read_packed(storage: Storage, key: str, output: PackedOutput) -> bytes:
    """One output's bytes: a range read of its pack (``key`` is the pack's whole key)."""
    with storage.open(key, output.offset, output.size) as stream:
        return bytes(stream.read())
