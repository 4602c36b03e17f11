"""Local and S3 storage behave alike (S3 through a real moto server over HTTP)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest

from shared.errors import NotFound
from shared.settings import Settings
from shared.storage import Storage, open_storage
from shared.storage.local import LocalStorage
from tests.support.s3 import new_bucket


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store", secret=b"k")
    endpoint = request.getfixturevalue("moto_endpoint")
    settings = Settings(
        data_dir=tmp_path,
        storage_url=f"s3://{new_bucket(endpoint)}/pre",
        s3_endpoint_url=endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    return open_storage(settings)


def test_round_trip_list_delete(storage: Storage) -> None:
    storage.put_bytes("a/1.bin", b"one")
    storage.put_stream("a/2.bin", io.BytesIO(b"two" * 1000))
    storage.put_json("b/x.json", {"k": [1, 2]})
    assert storage.get_bytes("a/1.bin") == b"one"
    assert storage.size("a/2.bin") == 3000
    assert storage.get_json("b/x.json") == {"k": [1, 2]}
    assert [o.key for o in storage.list("a/")] == ["a/1.bin", "a/2.bin"]
    assert [o.key for o in storage.list("a/", start_after="a/1.bin")] == ["a/2.bin"]
    for prefix, start_after in (("a/", ""), ("a/", "a/1.bin"), ("a/1", ""), ("", ""), ("c/", "")):
        assert list(storage.keys(prefix, start_after)) == [o.key for o in storage.list(prefix, start_after)]
    storage.delete("a/1.bin")
    assert not storage.exists("a/1.bin")
    with pytest.raises(NotFound):
        storage.get_bytes("a/1.bin")


def test_local_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store", secret=b"k")
    with pytest.raises(NotFound):
        storage.put_bytes("../outside.bin", b"x")
    assert not (tmp_path / "outside.bin").exists()


def test_local_signed_urls_expire_and_resist_tampering(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store", secret=b"k")
    url = httpx.URL(storage.presign_get("a/b.png", 60))
    expires, sig = int(url.params["expires"]), url.params["signature"]
    assert storage.verify("GET", "a/b.png", expires, sig)
    assert not storage.verify("GET", "a/c.png", expires, sig)
    assert not storage.verify("PUT", "a/b.png", expires, sig)
    assert not storage.verify("GET", "a/b.png", expires + 1, sig)
    assert not storage.verify("GET", "a/b.png", int(time.time()) - 1, sig)


def test_unreachable_s3_is_retryable_not_a_crash(tmp_path: Path) -> None:
    from shared.errors import Retryable
    from tests.support.procs import free_port

    settings = Settings(
        data_dir=tmp_path,
        storage_url="s3://nowhere",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="x",
        s3_secret_access_key="y",
    )
    storage = open_storage(settings)
    for call in (
        storage.ping,
        lambda: storage.get_bytes("k"),
        lambda: storage.size("k"),
        lambda: list(storage.list("p/")),
        lambda: storage.put_bytes("k", b"v"),
    ):
        with pytest.raises(Retryable):
            call()


@pytest.mark.parametrize(
    "status,code,expected",
    [
        (400, "InvalidArgument", "refused"),
        (403, "AccessDenied", "refused"),
        (404, "NoSuchBucket", "refused"),
        (408, "RequestTimeout", "retry"),
        (429, "SlowDown", "retry"),
        (400, "RequestTimeTooSkewed", "retry"),
        (500, "InternalError", "retry"),
        (503, "SlowDown", "retry"),
        (503, "ServiceUnavailable", "retry"),
    ],
)
def test_the_stores_answers_are_sorted_into_final_and_transient(status: int, code: str, expected: str) -> None:
    """A 4xx is the request's fault and final (a malformed key, access denied); throttling, timeouts and
    5xx are the store's, and the same call may work later: an outage, never an item's failure."""
    import boto3
    from botocore.stub import Stubber

    from shared.errors import Retryable, StoreRefused
    from shared.storage.s3 import S3Storage

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    storage = S3Storage(client, "bucket")
    wanted = StoreRefused if expected == "refused" else Retryable
    with Stubber(client) as stub:
        for method in ("get_object", "put_object"):
            stub.add_client_error(method, service_error_code=code, http_status_code=status)
        with pytest.raises(wanted):
            storage.get_bytes("a/b.png")
        with pytest.raises(wanted):
            storage.put_bytes("a/b.png", b"x")


def test_range_reads(storage: Storage) -> None:
    data = bytes(range(256)) * 40
    storage.put_bytes("r/blob", data)
    for start, length in [(0, 10), (100, 1), (5000, 5240), (10230, 100), (0, None), (9000, None)]:
        with storage.open("r/blob", start, length) as stream:
            got = stream.read()
        assert got == data[start : None if length is None else start + length], (start, length)
    with storage.open("r/blob", len(data), 10) as stream:  # at the end: nothing, not an error
        assert stream.read() == b""
    with storage.open("r/blob", 3, 4) as stream:  # read in small pieces, never past the range
        assert stream.read(2) + stream.read(5) + stream.read() == data[3:7]
    with pytest.raises(NotFound):
        storage.open("r/missing", 0, 10)
