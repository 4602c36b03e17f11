"""S3-compatible storage through boto3: AWS, SeaweedFS, MinIO, Ceph, moto — any endpoint URL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from shared.errors import NotFound, Retryable, StoreRefused
from shared.settings import Settings
from shared.storage.base import ObjectInfo, Storage

_MISSING = {"NoSuchKey", "404", "NotFound"}
_TRANSIENT = {"SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "Throttling", "ThrottlingException", "503", "500"}


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


def _failure(exc: Exception, what: str) -> Exception:
    """What a failed store call means for the caller: unreachable, overloaded or failing servers are
    ``Retryable`` (the same call may succeed later, and no item is to blame); a request the store refuses
    (4xx: malformed key, access denied, no such bucket) is ``StoreRefused``, final."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(error.get("Code"))
        if 400 <= status < 500 and status not in (408, 429) and code not in _TRANSIENT:
            return StoreRefused(f"{what}: the store refused it ({code}: {error.get('Message', '')})")
    return Retryable(f"{what}: the store is unavailable ({type(exc).__name__})")


class S3Storage(Storage):
    calls_wait_on_network = True

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_settings(cls, settings: Settings, bucket: str, prefix: str) -> S3Storage:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=32,  # a results page reads its shards at once; the finaliser reads ahead
            ),
        )
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise _failure(exc, f"writing {key}") from exc

    def put_stream(self, key: str, stream: IO[bytes], content_type: str = "application/octet-stream") -> int:
        counter = _CountingReader(stream)
        try:
            # upload_fileobj streams in bounded multipart chunks: an archive larger than RAM is fine.
            self.client.upload_fileobj(counter, self.bucket, self._key(key), ExtraArgs={"ContentType": content_type})
        except (BotoCoreError, ClientError) as exc:
            raise _failure(exc, f"writing {key}") from exc
        return counter.count

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def open(self, key: str, start: int = 0, length: int | None = None) -> IO[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if length is not None:
            if length <= 0:
                return io.BytesIO(b"")
            args["Range"] = f"bytes={start}-{start + length - 1}"
        elif start:
            args["Range"] = f"bytes={start}-"
        try:
            response = self.client.get_object(**args)
        except ClientError as exc:
            if "Range" in args and exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return io.BytesIO(b"")  # a range that starts at (or past) the end: nothing to read
            if _is_missing(exc):
                raise NotFound(key) from exc
            raise _failure(exc, f"reading {key}") from exc
        except BotoCoreError as exc:
            raise _failure(exc, f"reading {key}") from exc
        return response["Body"]  # type: ignore[no-any-return]

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise _failure(exc, f"reading {key}") from exc
        except BotoCoreError as exc:
            raise _failure(exc, f"reading {key}") from exc
        return int(head["ContentLength"])

    def list(self, prefix: str, start_after: str = "", limit: int | None = None) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(prefix)}
        if start_after:
            args["StartAfter"] = self._key(start_after)
        count = 0
        try:
            for page in paginator.paginate(**args):
                for obj in page.get("Contents", []):
                    if limit is not None and count >= limit:
                        return
                    count += 1
                    yield ObjectInfo(obj["Key"][len(self.prefix) :], int(obj["Size"]))
        except ClientError as exc:
            if _is_missing(exc) or exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return
            raise _failure(exc, f"listing {prefix}") from exc
        except BotoCoreError as exc:
            raise _failure(exc, f"listing {prefix}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise _failure(exc, f"deleting {key}") from exc

    def presign_get(self, key: str, expires_s: int) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_s
            )
        )

    def presign_put(self, key: str, expires_s: int) -> str:
        return str(
            self.client.generate_presigned_url(
                "put_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_s
            )
        )

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError, EndpointConnectionError) as exc:
            raise Retryable(f"object store unavailable ({type(exc).__name__})") from exc

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


class _CountingReader:
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.count += len(chunk)
        return chunk
