"""Starting the service: the API (uvicorn), workers (celery), or both together (``fovea up``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared.queueing import QUEUES
from shared.settings import Settings

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def worker_command(
    concurrency: int, loglevel: str = "INFO", events: bool = False, queues: tuple[str, ...] = tuple(QUEUES)
) -> list[str]:
    """``events``: send task events and heartbeats (Flower shows them); otherwise the quiet default.
    ``queues``: which of ``items`` (shards, training steps) and ``control`` (planning, finalising) it takes."""
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown or not queues:
        raise ValueError(f"unknown queue(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(QUEUES)}")
    # One prefork child per GPU is the rule; --concurrency > 1 only makes sense on CPU.
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "-Q",
        ",".join(QUEUES[name] for name in queues),
        "--without-gossip",
        "--without-mingle",
    ]
    return command if events else [*command, "--without-heartbeat"]


def worker_metrics_env(settings: Settings) -> dict[str, str]:
    """The environment a worker's processes need for its metrics endpoint: a fresh folder where each
    process writes its figures (prometheus-client's multiprocess mode, fixed when the client is first
    imported, so set before the worker starts). One folder per worker process; folders of workers that
    are gone are removed."""
    if not settings.metrics_port:
        return {}
    if os.environ.get(METRICS_ENV):  # the operator's own folder: emptied, as the client requires
        folder = Path(os.environ[METRICS_ENV])
        for stale in folder.glob("*.db"):
            stale.unlink()
        return {METRICS_ENV: str(folder)}
    root = Path(tempfile.gettempdir())
    for old in root.glob("fovea-metrics-*"):
        pid = old.name.removeprefix("fovea-metrics-")
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"fovea-metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return {METRICS_ENV: str(folder)}


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_environment(settings: Settings) -> None:
    """Pin paths and secrets before any child starts, so every process agrees on them."""
    data_dir = Path(settings.data_dir).resolve()
    os.environ["FOVEA_DATA_DIR"] = str(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings.secret()


def run_api(host: str, port: int) -> None:
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="warning", access_log=False)


def run_worker(settings: Settings, concurrency: int, queues: tuple[str, ...] = tuple(QUEUES), nice: int = 0) -> int:
    """Replace this process with the Celery worker, so signals reach it directly (the process keeps its
    id, so the metrics folder named after it stays its own). ``nice``: run it (and its pool) at a lower
    CPU priority, for a control worker beside item workers on the same cores."""
    os.environ.update(worker_metrics_env(settings))
    command = worker_command(concurrency, events=settings.task_events, queues=queues)
    if nice:
        os.nice(nice)
    os.execv(command[0], command)
    return 1  # not reached


def run_stack(settings: Settings, host: str, port: int, workers: int) -> int:
    """The embedded default: the API and the workers as two child processes of this one.

    SIGTERM or Ctrl-C stops both (the workers finish their current batch); if either child exits, the
    other is stopped too, so no orphan keeps running.
    """
    prepare_environment(settings)
    api = [sys.executable, "-m", "cli.main", "api", "--host", host, "--port", str(port)]
    worker = worker_command(workers, "WARNING", events=settings.task_events)
    children = [subprocess.Popen(api), subprocess.Popen(worker, env={**os.environ, **worker_metrics_env(settings)})]
    sys.stderr.write(
        f"fovea: API on http://{host}:{port}, {workers} worker process(es), data in {os.environ['FOVEA_DATA_DIR']}\n"
    )

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 30
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
    return max((child.returncode or 0) for child in children)
