"""Object-store URIs that users give (inputs, weights), parsed once into one canonical spelling.

A key has exactly one spelling here: no empty segments (``a//b``), no ``.`` or ``..`` segments, no percent
signs, backslashes, control characters or white space. Stores disagree on what to do with those (one
collapses ``//``, another decodes ``%2F``, a third answers 400), so a key that could mean two objects is
refused, at the API (a 422 naming the field) and again where the worker reads.

The service's own areas (``tenants/``, ``live/`` and ``uploads-unused/`` of its bucket, under its prefix)
are off limits to every such URI. They are compared on a folded key (Unicode NFKC, case folded, trailing
dots and spaces of each segment dropped), because a store that compares keys loosely (case-insensitive,
or on a file system that drops a trailing dot) would otherwise let ``TENANTS/alice``, ``tenants./alice``
or ``ｔenants/alice`` through; and a key whose folded form has an empty, ``.`` or ``..`` segment
(``x/．．/``) is refused like the plain one. Invisible characters (format, separator, control) are refused
outright: two keys that print the same must not name different objects.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from shared.keys import SERVICE_ROOTS

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
    if any(unicodedata.category(char)[0] in "CZ" for char in key):
        raise ValueError("object keys may not hold invisible characters (format, separator or control)")
    if key and any(segment in ("", ".", "..") for segment in inner):
        raise ValueError("object keys may not hold empty ('//'), '.' or '..' segments")
    folded = fold_key(key).split("/")
    if key and any(segment in ("", ".", "..") for segment in (folded[:-1] if key.endswith("/") else folded)):
        raise ValueError("object keys may not hold segments that a store could read as empty, '.' or '..'")
    if len(key.encode()) > 1024:
        raise ValueError("object keys are at most 1024 bytes")
    return S3Location(bucket, key)


def fold_key(key: str) -> str:
    """The spelling a loose store could take ``key`` for: NFKC, case folded, each segment without its
    trailing dots and spaces (the last segment's, too: ``tenants.`` lists like ``tenants``)."""
    folded = unicodedata.normalize("NFKC", key).casefold()
    return "/".join(segment.rstrip(". ") if segment not in (".", "..") else segment for segment in folded.split("/"))


def reaches_area(location: S3Location, bucket: str, areas: Iterable[str]) -> bool:
    """Whether ``location`` names or lists anything under any of ``areas`` (key prefixes) of ``bucket``."""
    if location.bucket != bucket:
        return False
    key = fold_key(location.key)
    for area in areas:
        area = fold_key(area)
        if key.startswith(area) or (location.is_prefix and area.startswith(key)):
            return True
    return False


def reaches_service(location: S3Location, root: tuple[str, str]) -> bool:
    """Whether ``location`` reaches any of the service's own areas under its storage ``root`` (bucket,
    prefix): where tenants' data, live jobs and unused uploads are kept."""
    bucket, prefix = root
    return reaches_area(location, bucket, [prefix + area for area in SERVICE_ROOTS])
