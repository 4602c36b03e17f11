"""A worker's metrics endpoint (``FOVEA_METRICS_HOST``:``FOVEA_METRICS_PORT``), served by its main process.

The prefork children run the tasks; each writes its figures to its own file in the folder that
``fovea worker`` names in ``PROMETHEUS_MULTIPROC_DIR`` before Python starts (prometheus-client's
multiprocess mode fixes its storage when it is first imported), and the main process adds them up at each
scrape. The main process adds what only it knows:

- the GPUs, through NVML (``worker.runtime.gpu_metrics``);
- who this worker is (``fovea_worker_info``: its Celery node name, as Flower shows it);
- whether it leads the reconciler (``fovea_reconciler_leader``), and, on the leader only, the
  deployment's backlog: queue depth, the oldest waiting task's age, outstanding tasks. One worker leads
  at a time (a lease in the coordinator, ``worker.engine.reconcile``) and it already reads the broker and
  the records every tick, so these figures come from exactly one endpoint with nothing more to deploy,
  and move to another worker when the leader dies. Summed or maxed over workers they read the same.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from shared.settings import Settings
from worker.runtime.gpu_metrics import GpuCollector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class Backlog:
    """What waits in the deployment, as the reconciler's leader measured it."""

    queue_depth: int
    """Messages waiting in the broker's queue (taken ones excluded)."""
    queued_tasks: int
    """Outstanding tasks on record as sent and not yet taken by a worker."""
    running_tasks: int
    oldest_queued_since: float | None
    """When the oldest of the queued tasks was sent (a wall-clock time), None when none waits."""
    live_jobs: int


class WorkerMonitor(Collector):
    """The main process's own figures; the reconciler reports to it after every tick."""

    def __init__(self, node: str, device: str) -> None:
        self.node, self.device = node, device
        self._lock = threading.Lock()
        self._leader = False
        self._backlog: Backlog | None = None

    def observe_reconciler(self, leader: bool, backlog: Backlog | None) -> None:
        with self._lock:
            self._leader, self._backlog = leader, backlog if leader else None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            leader, backlog = self._leader, self._backlog
        info = GaugeMetricFamily("fovea_worker_info", "This worker", labels=["node", "device"])
        info.add_metric([self.node, self.device], 1)
        yield info
        yield GaugeMetricFamily("fovea_reconciler_leader", "1 on the worker that reconciles now", value=int(leader))
        if backlog is None:
            return
        yield GaugeMetricFamily(
            "fovea_queue_depth", "Messages waiting in the broker's queue", value=backlog.queue_depth
        )
        age = 0.0 if backlog.oldest_queued_since is None else max(0.0, time.time() - backlog.oldest_queued_since)
        yield GaugeMetricFamily(
            "fovea_oldest_waiting_task_age_seconds", "Age of the oldest task sent and not yet taken", value=age
        )
        tasks = GaugeMetricFamily("fovea_outstanding_tasks", "Tasks on record by state", labels=["state"])
        tasks.add_metric(["queued"], backlog.queued_tasks)
        tasks.add_metric(["running"], backlog.running_tasks)
        yield tasks
        yield GaugeMetricFamily("fovea_live_jobs", "Jobs with outstanding work", value=backlog.live_jobs)


class Exporter:
    """The endpoint: started in the main process once the pool is up; children close their copy of it."""

    def __init__(self, monitor: WorkerMonitor, server: WSGIServer | None) -> None:
        self.monitor, self.server = monitor, server

    @classmethod
    def start(cls, settings: Settings, node: str) -> Exporter:
        monitor = WorkerMonitor(node, settings.device)
        if not settings.metrics_port:
            return cls(monitor, None)
        registry = CollectorRegistry()
        folder = os.environ.get(MULTIPROC_ENV)
        if folder:
            MultiProcessCollector(registry, path=folder)
        else:
            log.error(
                "%s is not set: this endpoint cannot see the figures of the pool's processes; "
                "start workers with `fovea worker`",
                MULTIPROC_ENV,
            )
        registry.register(GpuCollector())
        registry.register(monitor)
        try:
            server, _thread = start_http_server(settings.metrics_port, settings.metrics_host, registry)
        except OSError as exc:  # the work matters more than its figures: keep working, say so loudly
            log.error(
                "no metrics endpoint: cannot listen on %s:%s (%s)", settings.metrics_host, settings.metrics_port, exc
            )
            return cls(monitor, None)
        log.info("metrics on http://%s:%s/metrics", settings.metrics_host, settings.metrics_port)
        return cls(monitor, server)

    def close_in_child(self) -> None:
        """A forked child holds a copy of the listening socket: close it, so only the parent listens and a
        restarted worker can bind the port again."""
        if self.server is not None:
            self.server.socket.close()
