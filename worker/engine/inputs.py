"""Where a job's items come from: resolving its input URI to an archive stream or a list of objects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from shared import keys
from shared.errors import InvalidInput, NotFound
from shared.settings import Settings
from shared.storage import Storage, open_storage
from shared.storage.base import ObjectInfo


@dataclass
class ArchiveInput:
    name: str
    stream: IO[bytes]


@dataclass
class PrefixInput:
    bucket: str
    prefix: str
    objects: Iterator[ObjectInfo]


@dataclass
class BuiltinInput:
    """Generated images with ground truth (label and box per image)."""

    name: str
    count: int
    seed: int


BUILTIN_SHAPES_SEED = 12345  # held out: training uses the job's seed and seed + 1000003


def parse_builtin(uri: str) -> BuiltinInput:
    name, _, query = uri.removeprefix("builtin:").partition("?")
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    return BuiltinInput(name, int(params.get("n", 200)), int(params.get("seed", BUILTIN_SHAPES_SEED)))


def resolve_input(
    uri: str, tenant: str, settings: Settings, storage: Storage
) -> ArchiveInput | PrefixInput | BuiltinInput:
    if uri.startswith("builtin:"):
        return parse_builtin(uri)
    if uri.startswith("upload://"):
        upload_id = uri.removeprefix("upload://")
        found = next(iter(storage.list(keys.uploads_prefix(tenant, upload_id))), None)
        if found is None:
            raise InvalidInput(f"upload {upload_id} not found (or its content was never PUT)")
        return ArchiveInput(found.key.rsplit("/", 1)[-1], storage.open(found.key))
    if not uri.startswith("s3://"):
        raise InvalidInput(f"unsupported input {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    _refuse_service_area(settings, bucket, key)
    source = open_storage(settings, bucket=bucket)
    if key == "" or key.endswith("/"):
        return PrefixInput(bucket, key, source.list(key))
    try:
        return ArchiveInput(key.rsplit("/", 1)[-1], source.open(key))
    except NotFound as exc:
        raise InvalidInput(f"input not found: {uri}") from exc


def _refuse_service_area(settings: Settings, bucket: str, key: str) -> None:
    """Tenants read other tenants' data only through the API: the service's own area is off limits."""
    url = settings.resolved_storage_url()
    if not url.startswith("s3://"):
        raise InvalidInput("s3:// inputs need S3 storage (FOVEA_STORAGE_URL=s3://...); use upload:// here")
    own_bucket, _, own_prefix = url.removeprefix("s3://").partition("/")
    own_prefix = own_prefix.strip("/") + "/" if own_prefix.strip("/") else ""
    area = own_prefix + "tenants/"
    if bucket == own_bucket and (key.startswith(area) or area.startswith(key)):
        raise InvalidInput("s3 inputs may not point into the service's own storage area; use upload://")
