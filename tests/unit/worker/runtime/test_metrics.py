"""The workers' metrics: items counted once however often they are recorded, the store timed, GPUs read
through NVML (or cleanly none), the backlog only from the reconciler's leader, and one endpoint adding
up the figures of every process of a worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from shared import keys
from shared.kinds import parse_spec
from shared.queueing import PLAN_TASK
from shared.settings import Settings
from shared.storage.local import LocalStorage
from tests.support.images import tar_with_broken_members
from tests.support.procs import free_port
from tests.support.runtime import recording_resources
from tests.unit.worker.engine.test_reconcile import FakeBroker
from worker.engine.lifecycle import start_job
from worker.engine.reconcile import run_reconciler
from worker.engine.shard import run_shard
from worker.runtime import metrics
from worker.runtime.exporter import Backlog, Exporter, WorkerMonitor
from worker.runtime.gpu_metrics import GpuCollector
from worker.runtime.timed_storage import TimedStorage

REPO = Path(__file__).resolve().parents[4]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_items_recorded_twice_by_two_workers_are_counted_once(local_settings: Settings) -> None:
    first, second = recording_resources(local_settings), recording_resources(local_settings)
    ok, failed = value("fovea_items_processed_total", kind="k"), value("fovea_items_failed_total", kind="k", reason="x")
    batch = {0: {"status": "ok"}, 1: {"status": "failed", "error": "bad"}, 2: {"status": "ok"}}
    metrics.ItemRecorder(first.services.coordinator, "j", "k").record(batch, "x")
    metrics.ItemRecorder(second.services.coordinator, "j", "k").record({**batch, 3: {"status": "ok"}}, "x")
    assert value("fovea_items_processed_total", kind="k") - ok == 3
    assert value("fovea_items_failed_total", kind="k", reason="x") - failed == 1


def test_a_shard_run_again_on_another_worker_counts_its_items_once(local_settings: Settings, tmp_path: Path) -> None:
    rt, again = recording_resources(local_settings), recording_resources(local_settings)  # one store, two workers
    archive = tmp_path / "in.tar"
    broken = tar_with_broken_members(archive, good=6, huge_bytes=10)
    rt.services.storage.put_bytes(keys.upload("local", "u1", "in.tar"), archive.read_bytes())
    spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "upload://u1"})
    record = rt.services.jobs.create("local", spec.kind, spec.model_dump(mode="json"), None)
    rt.services.submit(record.id, "plan", PLAN_TASK, ("local", record.id))
    before = {name: value(f"fovea_items_{name}_total", **labels) for name, labels in _SERIES.items()}
    shards = value("fovea_shard_seconds_count", kind="saliency")
    start_job(rt, "local", record.id)
    plan = rt.services.storage.get_json(keys.plan("local", record.id))
    # The race redelivery allows: the second worker read the item records before the first wrote them, so
    # it runs every item again (outputs have fixed keys) and records them all a second time.
    again.services.coordinator.item_results = lambda job, indices: {}  # type: ignore[method-assign]
    for shard in range(int(plan["shards"])):
        run_shard(rt, "local", record.id, shard)
        rt.services.storage.delete(keys.shard_manifest("local", record.id, shard))
        run_shard(again, "local", record.id, shard)
    grown = {name: value(f"fovea_items_{name}_total", **labels) - before[name] for name, labels in _SERIES.items()}
    progress = rt.services.coordinator.progress(record.id)
    assert progress is not None and progress.done + progress.failed == 6 + len(broken)
    assert grown == {"processed": progress.done, "failed": progress.failed} and progress.failed >= len(broken) - 1
    assert value("fovea_shard_seconds_count", kind="saliency") - shards == 2 * int(plan["shards"])


_SERIES = {"processed": {"kind": "saliency"}, "failed": {"kind": "saliency", "reason": "input"}}


def test_store_requests_are_timed_by_operation(tmp_path: Path) -> None:
    storage = TimedStorage(LocalStorage(tmp_path, secret=b"s"))
    counts = {op: value("fovea_store_request_seconds_count", operation=op) for op in ("put", "get", "head", "list")}
    storage.put_json("a/b.json", {"x": 1})
    assert storage.get_json("a/b.json") == {"x": 1} and storage.exists("a/b.json")
    listing = storage.list("a/")  # lazy: nothing asked of the store until the caller iterates
    assert value("fovea_store_request_seconds_count", operation="list") == counts["list"]
    assert [info.key for info in listing] == ["a/b.json"]
    grown = {op: value("fovea_store_request_seconds_count", operation=op) - n for op, n in counts.items()}
    assert grown == {"put": 1, "get": 1, "head": 1, "list": 2}  # list: the item, then the end
    assert storage.path("a/b.json").is_file()  # what a backend has beyond the interface passes through


def test_gpus_through_nvml_or_cleanly_none() -> None:
    collector = GpuCollector()
    families = {family.name: family for family in collector.collect()}
    count = families["fovea_gpus"].samples[0].value
    if not collector.available:  # no NVIDIA driver (CI): one figure, zero, and no error
        assert list(families) == ["fovea_gpus"] and count == 0
        return
    assert count >= 1 and len(families["fovea_gpu_utilization_ratio"].samples) == count
    for used, total in zip(
        families["fovea_gpu_memory_used_bytes"].samples, families["fovea_gpu_memory_total_bytes"].samples, strict=True
    ):
        assert 0 <= used.value <= total.value and total.value > 2**30
    assert all(0 <= s.value <= 1 for s in families["fovea_gpu_utilization_ratio"].samples)


def test_the_backlog_is_exported_only_while_leading() -> None:
    monitor = WorkerMonitor("celery@a", "cuda")
    names = lambda: {family.name for family in monitor.collect()}  # noqa: E731
    assert names() == {"fovea_worker_info", "fovea_reconciler_leader"}
    monitor.observe_reconciler(True, Backlog(4, 3, 2, time.time() - 60, 1))
    families = {family.name: family for family in monitor.collect()}
    assert families["fovea_queue_depth"].samples[0].value == 4
    assert 60 <= families["fovea_oldest_waiting_task_age_seconds"].samples[0].value < 70
    assert {s.labels["state"]: s.value for s in families["fovea_outstanding_tasks"].samples} == {
        "queued": 3,
        "running": 2,
    }
    monitor.observe_reconciler(False, Backlog(4, 3, 2, None, 1))  # another worker leads now
    assert names() == {"fovea_worker_info", "fovea_reconciler_leader"}


def test_the_reconcilers_leader_reports_the_backlog_and_the_others_do_not(local_settings: Settings) -> None:
    rt = recording_resources(local_settings)
    record = rt.services.jobs.create("local", "saliency", {"kind": "saliency"}, None)
    rt.services.submit(record.id, "plan", PLAN_TASK, ("local", record.id))
    rt.services.coordinator.set_epoch("e")
    reports: list[tuple[bool, Backlog | None]] = []

    def one_tick() -> None:  # a worker's reconciler loop (a new owner each time), stopped after its first tick
        stop = threading.Event()
        run_reconciler(rt.services, FakeBroker(waiting=1), stop, lambda *r: (reports.append(r), stop.set()))

    one_tick()
    one_tick()  # a second worker: the first one's lease is still live
    (leads, backlog), (other, none) = reports
    assert leads and backlog is not None and not other and none is None
    assert (backlog.queue_depth, backlog.queued_tasks, backlog.running_tasks, backlog.live_jobs) == (1, 1, 0, 1)
    assert backlog.oldest_queued_since is not None and backlog.oldest_queued_since <= time.time()


def test_one_endpoint_adds_up_every_process_and_outlives_a_killed_child(tmp_path: Path) -> None:
    """Children (one SIGKILLed after counting) write their own files; the main process serves the sum."""
    port = free_port()
    script = f"""
import os, signal, httpx
from worker.runtime import metrics
from worker.runtime.exporter import Exporter
from shared.settings import Settings
def child(n, die):
    metrics.ITEMS_PROCESSED.labels("k").inc(n)
    if die:
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(0)
for n, die in ((3, False), (4, True)):
    pid = os.fork()
    if pid == 0:
        child(n, die)
    os.waitpid(pid, 0)
metrics.ITEMS_PROCESSED.labels("k").inc(5)  # the main process counts too
exporter = Exporter.start(Settings(metrics_port={port}), node="celery@test")
print(httpx.get("http://127.0.0.1:{port}/metrics").text)
"""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    series = {s.name: s for f in text_string_to_metric_families(out.stdout) for s in f.samples}
    assert series["fovea_items_processed_total"].value == 12 and series["fovea_gpus"].value >= 0
    assert series["fovea_worker_info"].labels["node"] == "celery@test"


def test_a_taken_port_leaves_the_worker_working_without_an_endpoint() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        exporter = Exporter.start(Settings(metrics_port=port), node="celery@test")
        assert exporter.server is None and exporter.monitor.node == "celery@test"
    served = Exporter.start(Settings(metrics_port=free_port()), node="celery@test")
    assert served.server is not None
    try:
        text = httpx.get(f"http://127.0.0.1:{served.server.server_port}/metrics").text
        assert "fovea_worker_info" in text and "fovea_reconciler_leader 0.0" in text
    finally:
        served.server.shutdown()
        served.server.server_close()
