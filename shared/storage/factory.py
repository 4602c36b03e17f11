"""Opening the store that the settings name: a local directory or an S3 bucket."""

from __future__ import annotations

from shared.errors import InvalidInput
from shared.settings import Settings
from shared.storage.base import Storage
from shared.storage.local import LocalStorage
from shared.storage.s3 import S3Storage


def open_storage(settings: Settings, *, bucket: str | None = None) -> Storage:
    """The store named by the settings; ``bucket`` opens another bucket of the same S3 service."""
    url = settings.resolved_storage_url()
    if url.startswith("file://"):
        if bucket is not None:
            raise InvalidInput("s3:// inputs need S3 storage (FOVEA_STORAGE_URL=s3://...)")
        return LocalStorage(url.removeprefix("file://"), secret=settings.secret(), public_url=settings.public_url)
    if url.startswith("s3://"):
        own_bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if bucket is not None and bucket != own_bucket:
            return S3Storage.from_settings(settings, bucket, "")
        return S3Storage.from_settings(settings, own_bucket, prefix if bucket is None else "")
    raise ValueError(f"FOVEA_STORAGE_URL must start with file:// or s3://, got {url!r}")
