"""Settings, read from the environment (prefix ``FOVEA_``) once at the process edge and passed down."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""Tenant names, job ids and upload ids: used verbatim in storage keys, so they must be safe as they are."""


class Settings(BaseSettings):
    """Every knob of the service. Defaults give the embedded single-machine setup.

    Embedded default: ``broker_url`` and ``redis_url`` empty, ``storage_url`` a local directory.
    Distributed: ``FOVEA_BROKER_URL=redis://...``, ``FOVEA_REDIS_URL=redis://...`` and
    ``FOVEA_STORAGE_URL=s3://bucket/prefix`` with ``FOVEA_S3_ENDPOINT_URL`` for non-AWS servers.
    """

    model_config = SettingsConfigDict(env_prefix="FOVEA_", extra="ignore")

    data_dir: Path = Field(Path("fovea-data"), description="Local state of the embedded default.")
    storage_url: str = Field("", description="file:///abs/dir or s3://bucket[/prefix]; empty: DATA_DIR/store")
    broker_url: str = Field("", description="Celery broker; empty: kombu filesystem transport in DATA_DIR")
    redis_url: str = Field("", description="Coordination (progress, cancel, status); empty: SQLite in DATA_DIR")

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    api_keys: str = Field("", description="Comma-separated KEY=TENANT pairs; empty: loopback acts as 'local'")
    public_url: str = Field("", description="Base URL clients use to reach the API (for signed local URLs)")
    signing_secret: str = Field("", description="HMAC secret for the API's own signed URLs")
    presign_ttl_s: int = 3600

    assets_dir: Path | None = Field(None, description="Folder holding weights/ and mnist/ (read-only assets)")
    torch_home: Path | None = Field(None, description="torchvision weight cache (TORCH_HOME)")
    allow_downloads: bool = Field(False, description="Allow torchvision to download weights at run time")

    # Input limits: each breach is a per-item error, never a crash.
    max_item_bytes: int = 50 * 1024 * 1024
    max_image_pixels: int = 89_478_485  # PIL's own decompression-bomb threshold
    max_upload_bytes: int = 20 * 1024**3
    max_direct_upload_bytes: int = 512 * 1024**2
    max_items_per_job: int = 2_000_000

    # Sharding and task timing (keep task_time_limit far below the visibility timeout).
    shard_items: int = 64
    shard_bytes: int = 64 * 1024 * 1024
    plan_step_s: float = Field(
        300.0, ge=0.0, description="Planning time per step; a bigger input plans in several steps (0: a shard a step)"
    )
    pack_bytes: int = Field(
        256 * 1024**2,
        ge=1,
        description="Packed outputs: a shard's pack is stored (and its items recorded) at this size",
    )
    report_failures: int = Field(1000, ge=0, description="Failed items listed in the report (the manifest has all)")
    visibility_timeout_s: int = 3600
    task_time_limit_s: int = 1200
    task_soft_time_limit_s: int = 1080
    max_deliveries: int = 3

    # Recovery: a running task holds a lease renewed by its heartbeat; one worker (the elected leader)
    # reconciles every few seconds: work whose lease expired is sent again, and so is queued work the
    # broker no longer holds. Recovery does not wait for the visibility timeout.
    lease_ttl_s: float = Field(30.0, ge=3.0, description="A task's lease; renewed every third of it")
    reconcile_interval_s: float = Field(10.0, ge=0.5, description="How often the leader reconciles")
    stale_queue_s: float = Field(
        60.0, ge=1.0, description="Queued work older than this, with the broker's queue empty, is sent again"
    )
    retry_backoff_max_s: float = Field(30.0, ge=0.1, description="Longest wait between retries in an outage")
    max_strikes: int = Field(
        3,
        ge=1,
        description="A task handed back this often still failing while the store answered is given up on "
        "(its shard's unfinished items, or its job, fail with the last error); an outage never counts",
    )
    upload_ttl_s: float = Field(
        86400.0, ge=60.0, description="An upload that no job has used is deleted this long after it was made"
    )
    max_json_body_bytes: int = Field(4 * 1024**2, ge=1024, description="Largest JSON request body (413 past it)")
    report_gallery_items: int = 120

    device: str = Field("auto", description="torch device for pipelines: auto, cpu, cuda, cuda:N")

    # Monitoring: each worker serves Prometheus metrics from its main process (its pool children write
    # theirs to per-process files that the main process adds up); Flower needs task events.
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of a worker's metrics endpoint; 0: none")
    metrics_host: str = Field("127.0.0.1", description="Address a worker's metrics endpoint listens on")
    task_events: bool = Field(False, description="Workers send Celery task events and heartbeats (for Flower)")

    @field_validator("shard_items", "max_deliveries")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'store').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://localhost/"

    def broker_folder(self) -> Path:
        return (self.data_dir / "broker").resolve()

    def tenant_for_key(self) -> dict[str, str]:
        """API key -> tenant. Tenant names are identifiers (letters, digits, '_' and '-', starting with a
        letter or digit) used as they are in storage keys: two spellings can never share a tenant's data."""
        pairs = [p.strip() for p in self.api_keys.split(",") if p.strip()]
        out: dict[str, str] = {}
        for pair in pairs:
            key, sep, tenant = pair.partition("=")
            if not sep or not key or not tenant:
                raise ValueError("FOVEA_API_KEYS must be KEY=TENANT pairs separated by commas")
            if not IDENTIFIER.match(tenant):
                raise ValueError(
                    f"FOVEA_API_KEYS: tenant {tenant!r} must be 1-64 letters, digits, '_' or '-' "
                    "(starting with a letter or digit)"
                )
            out[key] = tenant
        return out

    def storage_root(self) -> tuple[str, str] | None:
        """(bucket, key prefix) under which the service keeps its data on S3 storage (None on local storage)."""
        url = self.resolved_storage_url()
        if not url.startswith("s3://"):
            return None
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""

    def secret(self) -> bytes:
        """The signing secret; on the embedded default one is made once and kept in DATA_DIR."""
        if self.signing_secret:
            return self.signing_secret.encode()
        path = self.data_dir / "signing.key"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.replace(path)
        return path.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
