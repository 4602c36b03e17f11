"""Buckets on the test S3 servers."""

from __future__ import annotations

import uuid

import boto3
from botocore.config import Config

from tests.support.procs import wait_until


def client(endpoint: str, access_key: str = "testing", secret_key: str = "testing"):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def new_bucket(endpoint: str, access_key: str = "testing", secret_key: str = "testing") -> str:
    name = f"fovea-{uuid.uuid4().hex[:12]}"
    s3 = client(endpoint, access_key, secret_key)

    def create() -> bool:
        s3.create_bucket(Bucket=name)
        return True

    wait_until(create, 30, f"bucket {name}", interval=0.5)
    return name


def all_keys(endpoint: str, bucket: str, access_key: str = "testing", secret_key: str = "testing") -> list[str]:
    s3 = client(endpoint, access_key, secret_key)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys
