"""Shared fixtures. Services are real: redis-server and an S3 server are started on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import Settings, get_settings
from tests.support.procs import start_moto, start_redis, start_seaweed

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """Embedded-default settings in a temporary folder (local store, SQLite coordinator)."""
    return Settings(data_dir=tmp_path / "data", signing_secret="test-secret", shard_items=8)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """The read-only assets (real weights, MNIST): FOVEA_ASSETS_DIR, set by .ci/run. Required in CI."""
    value = os.environ.get("FOVEA_ASSETS_DIR")
    path = Path(value) if value else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "weights").is_dir():
        if IN_CI:
            pytest.fail(f"FOVEA_ASSETS_DIR ({path}) has no weights/ folder; CI must provide the assets")
        pytest.skip("assets folder with weights/ not available (set FOVEA_ASSETS_DIR)")
    return path


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free port (never the machine's shared one)."""
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_moto(tmp_path_factory.mktemp("moto"))
    yield url
    proc.stop()


SEAWEED_KEYS = ("fovea-test-access", "fovea-test-secret-key")


@pytest.fixture(scope="session")
def seaweed_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_seaweed(tmp_path_factory.mktemp("seaweed"), *SEAWEED_KEYS)
    yield url
    proc.stop()
