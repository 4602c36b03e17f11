"""The Celery application of the workers (``celery -A worker.celery_app worker``): glue only. The main
process of every worker also runs the reconciler loop (one of them leads at a time, see
``worker.engine.reconcile``) and serves the worker's metrics (``worker.runtime.exporter``); both touch
only the store, the coordinator, the broker and NVML, never CUDA, so they are safe in the parent of the
prefork children."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown

from shared.queueing import celery_config
from shared.settings import Settings, get_settings
from worker.engine.reconcile import run_reconciler
from worker.engine.write_behind import write_behind
from worker.kinds import load_all
from worker.runtime import metrics
from worker.runtime.broker import BrokerProbe
from worker.runtime.exporter import Exporter
from worker.runtime.services import Services


def create_app(settings: Settings) -> Celery:
    app = Celery("fovea", include=["worker.tasks"])
    app.conf.update(celery_config(settings))
    return app


app = create_app(get_settings())
_stop = threading.Event()
_exporter: list[Exporter] = []  # the main process's endpoint, once the pool is up


@worker_init.connect
def _load_kinds(**_kwargs: Any) -> None:
    """Every kind's plug-in imported once in the main process, before the pool forks: a child's first task
    does not spend seconds importing (importing never touches CUDA, so forking stays safe)."""
    load_all()


@worker_ready.connect
def _start_reconciler(sender: Any = None, **_kwargs: Any) -> None:
    settings = get_settings()
    exporter = Exporter.start(settings, node=str(getattr(sender, "hostname", "")))
    _exporter.append(exporter)
    services = Services.from_settings(settings, lambda name, args: app.send_task(name, args=list(args)))
    thread = threading.Thread(
        target=run_reconciler,
        args=(services, BrokerProbe(app), _stop, exporter.monitor.observe_reconciler),
        name="fovea-reconciler",
        daemon=True,
    )
    thread.start()


@worker_process_init.connect
def _in_child(**_kwargs: Any) -> None:
    for exporter in _exporter:  # children forked after the endpoint started hold a copy of its socket
        exporter.close_in_child()
    metrics.WORKER_BUSY.set(0)  # a new child: whatever a killed predecessor last said, nothing runs yet


@worker_process_shutdown.connect
def _drain_tail(**_kwargs: Any) -> None:
    """A child that exits (a warm shutdown, a recycled child) first finishes the tail in hand: left
    unfinished, its shard would wait for its lease to expire and run again."""
    write_behind().wait(timeout=60)


@worker_shutdown.connect
def _stop_reconciler(**_kwargs: Any) -> None:
    _stop.set()
