"""Sending tasks by name: the API enqueues without importing the worker code."""

from __future__ import annotations

from typing import Any

from celery import Celery

from shared.errors import Retryable
from shared.queueing import celery_config, queue_of
from shared.settings import Settings


class TaskQueue:
    def __init__(self, settings: Settings) -> None:
        self.app = Celery("fovea-api")
        self.app.conf.update(celery_config(settings))

    def send(self, name: str, args: list[Any]) -> None:
        try:
            self.app.send_task(
                name,
                args=args,
                queue=queue_of(name),
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
            )
        except Exception as exc:  # kombu raises OperationalError and socket errors alike
            raise Retryable(f"broker unavailable: {exc}") from exc

    def ping(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:
            raise Retryable(f"broker unavailable: {exc}") from exc
