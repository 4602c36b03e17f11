"""Object-store URIs that users give (inputs, weights), parsed once into one canonical spelling.

A key has exactly one spelling here: no empty segments (``a//b``), no ``.`` or ``..`` segments, no percent
signs, backslashes, control characters or white space. Stores disagree on what to do with those (one
collapses ``//``, another decodes ``%2F``, a third answers 400), so a key that could mean two objects is
refused, at the API (a 422 naming the field) and again where the worker reads. The service's own area
(``tenants/`` of its bucket, under its prefix) is off limits to every such URI, compared without regard to
case, because a case-insensitive store would otherwise let ``TENANTS/alice`` through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_FORBIDDEN = re.compile(r"[%\\\x00-\x20\x7f]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str
    """Canonical; '' is the whole bucket, a trailing '/' marks a prefix."""

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/key`` in its one canonical spelling; raises ValueError saying what is wrong."""
    if not uri.startswith("s3://"):
        raise ValueError("an object-store URI starts with s3://")
    bucket, slash, key = uri.removeprefix("s3://").partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"{bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '.' and '-')")
    if not slash:
        raise ValueError("give s3://bucket/key, or s3://bucket/prefix/ (with the trailing slash)")
    if _FORBIDDEN.search(key):
        raise ValueError("object keys may not hold percent signs, backslashes, white space or control characters")
    segments = key.split("/")
    inner = segments[:-1] if key.endswith("/") else segments
    if key and any(segment in ("", ".", "..") for segment in inner):
        raise ValueError("object keys may not hold empty ('//'), '.' or '..' segments")
    if len(key.encode()) > 1024:
        raise ValueError("object keys are at most 1024 bytes")
    return S3Location(bucket, key)


def reaches_area(location: S3Location, bucket: str, area: str) -> bool:
    """Whether ``location`` names or lists anything under ``area`` (a key prefix) of ``bucket``."""
    if location.bucket != bucket:
        return False
    key, area = location.key.lower(), area.lower()
    return key.startswith(area) or (location.is_prefix and area.startswith(key))
