"""Starting the service: the API (uvicorn), workers (celery), or both together (``fovea up``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.settings import Settings


def worker_command(concurrency: int, loglevel: str = "INFO") -> list[str]:
    # One prefork child per GPU is the rule; --concurrency > 1 only makes sense on CPU.
    return [
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
        "fovea",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def prepare_environment(settings: Settings) -> None:
    """Pin paths and secrets before any child starts, so every process agrees on them."""
    data_dir = Path(settings.data_dir).resolve()
    os.environ["FOVEA_DATA_DIR"] = str(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings.secret()


def run_api(host: str, port: int) -> None:
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="warning", access_log=False)


def run_worker(concurrency: int) -> int:
    """Replace this process with the Celery worker, so signals reach it directly."""
    command = worker_command(concurrency)
    os.execv(command[0], command)
    return 1  # not reached


def run_stack(settings: Settings, host: str, port: int, workers: int) -> None:
    """The embedded default: API and workers from one command; Ctrl-C stops both."""
    prepare_environment(settings)
    worker = subprocess.Popen(worker_command(workers, "WARNING"), start_new_session=True)
    try:
        sys.stderr.write(
            f"fovea: API on http://{host}:{port}, {workers} worker process(es), data in {os.environ['FOVEA_DATA_DIR']}\n"
        )
        run_api(host, port)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
