"""Starting the service: the API (uvicorn), workers (celery), or both together (``fovea up``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def run_stack(settings: Settings, host: str, port: int, workers: int) -> int:
    """The embedded default: the API and the workers as two child processes of this one.

    SIGTERM or Ctrl-C stops both (the workers finish their current batch); if either child exits, the
    other is stopped too, so no orphan keeps running.
    """
    prepare_environment(settings)
    api = [sys.executable, "-m", "cli.main", "api", "--host", host, "--port", str(port)]
    children = [subprocess.Popen(api), subprocess.Popen(worker_command(workers, "WARNING"))]
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
