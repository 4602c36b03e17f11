"""The storage interface every backend implements (``shared.storage.factory`` picks one from a URL)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage(ABC):
    """Keys are '/'-separated, relative to the backend's root. Writes replace whole objects atomically."""

    calls_wait_on_network = False
    """True where a call mostly waits for a server (S3), so that many small reads or writes gain from being
    made at once on threads; a local file read is CPU work that threads only slow down under the GIL."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    @abstractmethod
    def put_stream(self, key: str, stream: IO[bytes], content_type: str = "application/octet-stream") -> int:
        """Store a stream without holding it in memory; returns the byte count."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Raises shared.errors.NotFound."""

    @abstractmethod
    def open(self, key: str, start: int = 0, length: int | None = None) -> IO[bytes]:
        """A readable stream of the object (caller closes it), or of ``length`` bytes of it from byte
        ``start`` (a range read: an archive planned or read in parts). Raises NotFound."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size, or None if it does not exist."""

    @abstractmethod
    def list(self, prefix: str, start_after: str = "", limit: int | None = None) -> Iterator[ObjectInfo]:
        """Objects under prefix in key order."""

    def keys(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """The keys under prefix in key order, where their sizes are not needed (a backend may skip them)."""
        return (info.key for info in self.list(prefix, start_after))

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def presign_get(self, key: str, expires_s: int) -> str: ...

    @abstractmethod
    def presign_put(self, key: str, expires_s: int) -> str: ...

    @abstractmethod
    def ping(self) -> None:
        """Raises shared.errors.Retryable when the store cannot be reached."""

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def put_json(self, key: str, value: Any) -> None:
        self.put_bytes(key, json.dumps(value, separators=(",", ":"), default=str).encode(), "application/json")

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))
