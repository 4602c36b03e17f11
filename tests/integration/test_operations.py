"""The processes docker-compose.yml (and its GPU override) describes, started as plain processes on
loopback: their own commands and environment, with the service names pointed at a real Redis and a real
SeaweedFS, and the published addresses at free local ports. A job runs over both workers; Prometheus's
targets (deploy/prometheus.yml) are scraped the way it would, and the items counted there, once across
workers, are the job's. The compose health checks run against the processes too."""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SEAWEED_KEYS
from tests.support.compose import model
from tests.support.images import tar_with_broken_members
from tests.support.monitoring import queries, selectors
from tests.support.procs import VENV_BIN, Proc, free_port, wait_until
from tests.support.stack import REPO, upload_archive, wait_for_job

pytestmark = pytest.mark.slow

GOOD, SHARD_ITEMS = 40, 8
WORKERS = ("worker-gpu0", "worker-gpu1")
"""The item workers (shards, training steps)."""
CONTROL = "control"
"""The control worker (planning, finalising)."""
CONTROL_HOST = f"control-{socket.gethostname()}"
"""The control worker's host name: a container has its own, here it is told one (Celery reads
CELERY_WORKER_HOSTNAME), so a command for the item workers' node name does not reach it."""
SPEC = {
    "kind": "saliency",
    "method": "gradient",
    "model": {"arch": "tiny_cnn", "num_classes": 10, "input_size": 32, "preprocessing": "unit"},
}


@dataclass
class Deployment:
    services: dict[str, Any]
    env: dict[str, dict[str, str]]
    procs: dict[str, Proc]
    api_url: str
    metrics: dict[str, str]
    """Scrape targets: service -> metrics URL."""
    local: Callable[[str], str]
    """A compose value as it reads on loopback."""


def on_loopback(value: str, broker: str, coordinator: str, s3_url: str, ports: dict[str, int]) -> str:
    """A compose value with the service addresses rewritten to the local servers and free ports."""
    value = value.replace("redis://redis:6379/0", broker).replace("redis://redis:6379/1", coordinator)
    value = value.replace("http://s3:8333", s3_url).replace("0.0.0.0", "127.0.0.1")
    for published, free in ports.items():
        value = value.replace(published, str(free))
    return value


def command(args: list[str]) -> list[str]:
    """A compose command run from this checkout's environment."""
    return [str(VENV_BIN / args[0]), *args[1:]]


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, redis_server: str, seaweed_endpoint: str
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("compose")
    broker, coordinator = f"{redis_server}/14", f"{redis_server}/15"  # databases no other test uses
    for url in (broker, coordinator):
        redis.Redis.from_url(url).flushdb()
    secrets = {
        "FOVEA_BUCKET": f"compose-{os.getpid()}",
        "FOVEA_S3_ACCESS_KEY_ID": SEAWEED_KEYS[0],
        "FOVEA_S3_SECRET_ACCESS_KEY": SEAWEED_KEYS[1],
        "FOVEA_API_KEYS": "key-a=alice",
        "FOVEA_SIGNING_SECRET": "compose",
        "GRAFANA_ADMIN_PASSWORD": "unused",
    }
    services = model(secrets)["services"]
    ports = {"8000": free_port(), "5555": free_port()}  # the published ports, free ones here

    def local(value: str) -> str:
        return on_loopback(value, broker, coordinator, seaweed_endpoint, ports)

    envs: dict[str, dict[str, str]] = {}
    metrics: dict[str, str] = {}
    for name in ("init", "api", *WORKERS, CONTROL):
        env = {key: local(str(value)) for key, value in services[name]["environment"].items()}
        # Test-sized shards (so the job spreads over both workers) and item limit (so a 1.5 MB member is too big).
        env |= {"FOVEA_SHARD_ITEMS": str(SHARD_ITEMS), "FOVEA_MAX_ITEM_BYTES": "1000000"}
        env |= {"FOVEA_DATA_DIR": str(workdir / name), "PYTHONUNBUFFERED": "1"}
        if name in (*WORKERS, CONTROL):  # no GPU here; each worker its own metrics port, as in its container
            port = free_port()
            env |= {"FOVEA_DEVICE": "cpu", "FOVEA_METRICS_PORT": str(port), "FOVEA_ASSETS_DIR": str(workdir)}
            metrics[name] = f"http://127.0.0.1:{port}/metrics"
        envs[name] = env
    subprocess.run(command(services["init"]["command"]), env={**os.environ, **envs["init"]}, check=True, timeout=120)
    procs = {
        "api": Proc(command([local(a) for a in services["api"]["command"]]), envs["api"], workdir / "api.log", REPO)
    }
    envs[CONTROL]["CELERY_WORKER_HOSTNAME"] = f"celery@{CONTROL_HOST}"
    for name in (*WORKERS, CONTROL):
        procs[name] = Proc(command(services[name]["command"]), envs[name], workdir / f"{name}.log", REPO)
    procs["flower"] = Proc(command([local(a) for a in services["flower"]["command"]]), {}, workdir / "flower.log", REPO)
    api_url = f"http://127.0.0.1:{ports['8000']}"
    metrics["api"] = api_url + "/metrics"
    metrics["flower"] = f"http://127.0.0.1:{ports['5555']}/metrics"
    try:
        wait_until(lambda: httpx.get(api_url + "/readyz", timeout=2).status_code == 200, 60, "API ready")
        for name in (*WORKERS, CONTROL):
            wait_until(lambda n=name: httpx.get(metrics[n], timeout=2).status_code == 200, 120, f"{name} metrics")
        yield Deployment(services, envs, procs, api_url, metrics, local)
    finally:
        for proc in procs.values():
            proc.stop()


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Series name -> [(labels, value)], as Prometheus reads the endpoint."""
    text = httpx.get(url, timeout=10).text
    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append((sample.labels, sample.value))
    return series


def total(scrapes: list[dict[str, list[tuple[dict[str, str], float]]]], name: str, **labels: str) -> float:
    return sum(
        value
        for series in scrapes
        for found, value in series.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


def test_a_job_over_two_workers_is_counted_once_across_their_endpoints(deployment: Deployment, tmp_path: Path) -> None:
    archive = tmp_path / "photos.tar"
    broken = tar_with_broken_members(archive, good=GOOD, huge_bytes=1_500_000)
    before = [scrape(deployment.metrics[name]) for name in WORKERS]
    with httpx.Client(base_url=deployment.api_url, headers={"Authorization": "Bearer key-a"}, timeout=30) as client:
        job = client.post("/v1/jobs", json={**SPEC, "input": upload_archive(client, archive)})
        assert job.status_code == 201, job.text
        final = wait_for_job(client, job.json()["id"], timeout=240)
    logs = "\n".join(p.tail(40) for p in deployment.procs.values())
    assert final["status"] == "succeeded", logs
    assert final["progress"] == {"total": GOOD + len(broken), "done": GOOD, "failed": len(broken)}

    workers = [scrape(deployment.metrics[name]) for name in WORKERS]
    api = scrape(deployment.metrics["api"])

    def grew(name: str, **labels: str) -> float:
        return total(workers, name, **labels) - total(before, name, **labels)

    # Every item once, across both endpoints: the ok ones and the failed ones (their own content's fault).
    assert grew("fovea_items_processed_total", kind="saliency") == GOOD
    assert grew("fovea_items_failed_total", kind="saliency") == len(broken)
    assert grew("fovea_items_failed_total", kind="saliency", reason="input") == len(broken)
    assert total([api], "fovea_jobs_submitted_total", kind="saliency") >= 1
    assert not any(name.startswith("fovea_items") for name in api)  # the API exports only its own figures
    # Durations, the model cache and the store, summed over the pool children of each worker.
    shards = math.ceil(GOOD / SHARD_ITEMS)  # at least: the planner keeps some broken members out of shards
    assert grew("fovea_shard_seconds_count", kind="saliency") >= 1
    assert grew("fovea_task_seconds_count", task="shard") >= shards
    assert grew("fovea_batch_seconds_count", kind="saliency") >= shards
    assert total(workers, "fovea_model_cache_loads_total") >= 1  # the first job on each worker loads
    assert grew("fovea_model_cache_hits_total") + grew("fovea_model_cache_loads_total") >= shards
    assert grew("fovea_store_request_seconds_count", operation="put") >= GOOD  # outputs written
    assert total(workers, "fovea_worker_busy") == 0
    # No GPU here: NVML is missing and says so, nothing else.
    for series in workers:
        assert series["fovea_gpus"][0][1] == 0 and "fovea_gpu_utilization_ratio" not in series
        assert series["fovea_worker_info"][0][0]["node"].startswith("celery@")


def test_the_backlog_comes_from_exactly_one_worker(deployment: Deployment) -> None:
    every_worker = (*WORKERS, CONTROL)

    def leaders() -> list[dict[str, list[tuple[dict[str, str], float]]]]:
        scrapes = [scrape(deployment.metrics[name]) for name in every_worker]
        return [s for s in scrapes if s["fovea_reconciler_leader"][0][1] == 1]

    wait_until(lambda: len(leaders()) == 1, 60, "a reconciler leader")
    scrapes = [scrape(deployment.metrics[name]) for name in every_worker]
    with_backlog = [s for s in scrapes if "fovea_queue_depth" in s]
    assert len(with_backlog) == 1 and with_backlog[0]["fovea_reconciler_leader"][0][1] == 1
    backlog = with_backlog[0]
    assert backlog["fovea_queue_depth"][0][1] >= 0 and backlog["fovea_oldest_waiting_task_age_seconds"][0][1] >= 0
    assert {labels["state"] for labels, _ in backlog["fovea_outstanding_tasks"]} == {"queued", "running"}


def test_every_metric_the_dashboard_and_alerts_use_is_served(deployment: Deployment) -> None:
    served: set[str] = {"up"}
    for url in deployment.metrics.values():
        served |= set(scrape(url))
    gpu_only = {"fovea_gpu_utilization_ratio", "fovea_gpu_memory_used_bytes", "fovea_gpu_memory_total_bytes"}
    used = {s.name for _where, expr in queries() for s in selectors(promql_parser.parse(expr))}
    # GPU figures need a GPU; a labelled counter appears once it has counted something.
    assert used - served - gpu_only <= {
        "fovea_gpu_memory_peak_bytes",
        "fovea_retries_total",
        "fovea_redeliveries_total",
        "fovea_outage_wait_seconds_total",
        "fovea_jobs_restored_total",
    }


def test_compose_health_checks_pass_against_the_processes(deployment: Deployment) -> None:
    for name in ("api", *WORKERS, CONTROL, "flower"):
        kind, *args = [deployment.local(a) for a in deployment.services[name]["healthcheck"]["test"]]
        run = ["bash", "-c", args[0]] if kind == "CMD-SHELL" else args
        env = {**os.environ, **deployment.env.get(name, {}), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        # A container's hostname; here both item workers share this one, the control worker has its own.
        env["HOSTNAME"] = CONTROL_HOST if name == CONTROL else socket.gethostname()
        result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (name, shlex.join(run), result.stdout, result.stderr)


def test_flower_sees_both_workers(deployment: Deployment) -> None:
    def online() -> float:
        return total([scrape(deployment.metrics["flower"])], "flower_worker_online")

    wait_until(lambda: online() >= 1, 60, "Flower to see the workers' heartbeats")


def control(deployment: Deployment, action: str) -> subprocess.CompletedProcess[str]:
    """The README's drain command, as an operator runs it in a worker's container (here both item
    workers share this host's name, so it reaches both)."""
    command = 'celery -b "$FOVEA_BROKER_URL" control ' + action + " fovea -d celery@$HOSTNAME"
    env = {**os.environ, **deployment.env["worker-gpu0"], "HOSTNAME": socket.gethostname()}
    env["PATH"] = f"{VENV_BIN}:{os.environ['PATH']}"
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60)


def test_drained_workers_take_no_work_until_they_consume_again(deployment: Deployment) -> None:
    stopped = control(deployment, "cancel_consumer")
    assert stopped.returncode == 0 and "no longer consuming from" in stopped.stdout, stopped
    with httpx.Client(base_url=deployment.api_url, headers={"Authorization": "Bearer key-a"}, timeout=30) as client:
        job = client.post(
            "/v1/jobs", json={"kind": "saliency", "method": "spectral_residual", "input": "builtin:shapes?n=5"}
        )
        assert job.status_code == 201, job.text
        # The control worker plans it; long enough after for an idle item worker to have taken a shard.
        wait_until(lambda: client.get(f"/v1/jobs/{job.json()['id']}").json()["progress"]["total"], 60, "the plan")
        time.sleep(5)
        assert client.get(f"/v1/jobs/{job.json()['id']}").json()["progress"]["done"] == 0
        resumed = control(deployment, "add_consumer")
        assert resumed.returncode == 0 and "add consumer fovea" in resumed.stdout, resumed
        assert wait_for_job(client, job.json()["id"], timeout=120)["status"] == "succeeded"


def test_a_warm_shutdown_finishes_the_running_shard(deployment: Deployment) -> None:
    """SIGTERM to a worker's main process, as `docker compose stop` sends it, mid-shard: the worker takes
    nothing new, finishes every shard it took, and exits; the job ends with every item once."""
    spec = {
        "kind": "feature_visualization",
        "model": SPEC["model"],
        "targets": [{"layer": "features.10", "channel": list(range(32))}],
        "steps": 10,
        "size": 32,
        "batch_size": 8,
    }
    worker = deployment.procs["worker-gpu1"]
    with httpx.Client(base_url=deployment.api_url, headers={"Authorization": "Bearer key-a"}, timeout=30) as client:
        created = client.post("/v1/jobs", json=spec)
        assert created.status_code == 201, created.text
        job = created.json()
        wait_until(lambda: client.get(f"/v1/jobs/{job['id']}").json()["progress"]["total"], 120, "the plan")
        wait_until(lambda: just_started(scrape(deployment.metrics["worker-gpu1"])), 120, "a shard starting")
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.popen.wait(timeout=180) == 0, worker.tail(80)
        final = wait_for_job(client, job["id"], timeout=300)
    assert final["status"] == "succeeded" and final["progress"] == {"total": 32, "done": 32, "failed": 0}
    log = worker.log.read_text() if worker.log else ""
    assert "Warm shutdown" in log
    received = set(re.findall(r"Task fovea\.shard\[([0-9a-f-]+)\] received", log))
    finished = set(re.findall(r"Task fovea\.shard\[([0-9a-f-]+)\] succeeded", log))
    assert received and received == finished, log[-3000:]
    after = log.split("Warm shutdown", 1)[1]  # the shard it was running when told to stop: finished
    assert re.search(r"Task fovea\.shard\[[0-9a-f-]+\] succeeded", after), log[-3000:]


def just_started(series: dict[str, list[tuple[dict[str, str], float]]]) -> bool:
    """The worker runs a task it began under a second ago (a one-batch shard lasts several)."""
    busy = series["fovea_worker_busy"][0][1] == 1
    return busy and time.time() - series["fovea_worker_progress_timestamp_seconds"][0][1] < 1.0
