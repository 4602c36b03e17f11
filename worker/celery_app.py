"""The Celery application of the workers (``celery -A worker.celery_app worker``): glue only."""

from __future__ import annotations

from celery import Celery

from shared.queueing import celery_config
from shared.settings import Settings, get_settings


def create_app(settings: Settings) -> Celery:
    app = Celery("fovea", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    return app


app = create_app(get_settings())
