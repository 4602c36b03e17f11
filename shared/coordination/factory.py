"""Opening the coordinator that the settings name: Redis when distributed, SQLite on one machine."""

from __future__ import annotations

from shared.coordination.base import Coordinator
from shared.coordination.redis_backend import RedisCoordinator
from shared.coordination.sqlite_backend import SqliteCoordinator
from shared.settings import Settings


def open_coordinator(settings: Settings) -> Coordinator:
    if settings.redis_url:
        return RedisCoordinator(settings.redis_url)
    return SqliteCoordinator(settings.data_dir / "coordination.sqlite3")
