"""Where a job's items come from: its input URI resolved to an archive stream, a listing of objects under
a prefix, or a built-in generated set; and any of the first two read as archive members."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from shared import keys
from shared.errors import InvalidInput, NotFound
from shared.settings import Settings
from shared.storage import Storage, open_storage
from shared.storage.base import ObjectInfo
from shared.uris import S3Location, parse_s3_uri, reaches_service
from worker.inputs.archive import Member, iter_members, unsafe_reason


@dataclass
class ArchiveSource:
    name: str
    stream: IO[bytes]


@dataclass
class PrefixSource:
    bucket: str
    prefix: str
    objects: Iterator[ObjectInfo]


@dataclass
class BuiltinSource:
    """Generated images with ground truth (label and box per image)."""

    name: str
    count: int
    seed: int
    size: int | None = None  # digit tasks: the canvas side
    distractors: int | None = None  # builtin:mnist_cluttered


BUILTIN_SHAPES_SEED = 12345  # held out: training uses the job's seed and seed + 1000003


def parse_builtin(uri: str) -> BuiltinSource:
    name, _, query = uri.removeprefix("builtin:").partition("?")
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    size, distractors = params.get("size"), params.get("distractors")
    return BuiltinSource(
        name,
        int(params.get("n", 200)),
        int(params.get("seed", BUILTIN_SHAPES_SEED)),
        int(size) if size is not None else None,
        int(distractors) if distractors is not None else None,
    )


def resolve_input(
    uri: str, tenant: str, settings: Settings, storage: Storage
) -> ArchiveSource | PrefixSource | BuiltinSource:
    if uri.startswith("builtin:"):
        return parse_builtin(uri)
    if uri.startswith("upload://"):
        upload_id = uri.removeprefix("upload://")
        found = next(iter(storage.list(keys.uploads_prefix(tenant, upload_id))), None)
        if found is None:
            raise InvalidInput(f"upload {upload_id} not found (or its content was never PUT)")
        return ArchiveSource(found.key.rsplit("/", 1)[-1], storage.open(found.key))
    if not uri.startswith("s3://"):
        raise InvalidInput(f"unsupported input {uri!r}")
    location = checked_location(uri, settings)
    source = open_storage(settings, bucket=location.bucket)
    if location.is_prefix:
        return PrefixSource(location.bucket, location.key, source.list(location.key))
    try:
        return ArchiveSource(location.key.rsplit("/", 1)[-1], source.open(location.key))
    except NotFound as exc:
        raise InvalidInput(f"input not found: {uri}") from exc


def checked_location(uri: str, settings: Settings) -> S3Location:
    """An ``s3://`` URI in its canonical spelling, outside the service's own area (checked again here, where
    the worker reads, whatever the API let through)."""
    try:
        location = parse_s3_uri(uri)
    except ValueError as exc:
        raise InvalidInput(f"{uri}: {exc}") from exc
    root = settings.storage_root()
    if root is None:
        raise InvalidInput("s3:// inputs need S3 storage (FOVEA_STORAGE_URL=s3://...); use upload:// here")
    if reaches_service(location, root):
        raise InvalidInput("s3 inputs may not point into the service's own storage area; use upload://")
    return location


def read_members(uri: str, tenant: str, settings: Settings, storage: Storage) -> Iterator[Member]:
    """The items of an archive or a prefix as archive members, one at a time (bounded memory)."""
    source = resolve_input(uri, tenant, settings, storage)
    if isinstance(source, BuiltinSource):
        raise InvalidInput(f"built-in input {uri!r} is not an archive")
    if isinstance(source, ArchiveSource):
        try:
            yield from iter_members(source.stream, source.name, max_bytes=settings.max_item_bytes)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        finally:
            source.stream.close()
        return
    reader = open_storage(settings, bucket=source.bucket)
    for info in source.objects:
        if info.key.endswith("/"):
            continue
        name = info.key[len(source.prefix) :]
        reason = unsafe_reason(name)
        if reason is None and info.size > settings.max_item_bytes:
            reason = f"object is {info.size} bytes, over the limit of {settings.max_item_bytes}"
        if reason is not None:
            yield Member(name, error=reason)
            continue
        try:
            yield Member(name, data=reader.get_bytes(info.key))
        except NotFound:
            yield Member(name, error="object disappeared from the store before it was read")
