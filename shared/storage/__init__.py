"""Object storage: one interface, a local-directory backend and an S3 backend."""

from shared.storage.base import ObjectInfo, Storage
from shared.storage.factory import open_storage

__all__ = ["ObjectInfo", "Storage", "open_storage"]
