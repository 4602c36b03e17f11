"""A Celery worker whose saliency batches take longer, for fault drills on real processes: the job runs
long enough to kill a worker, stop a service or cancel in the middle of a shard. The delay lives here,
in a test entry point, not in the production shard loop.

    python -m tests.support.slow_worker SECONDS_PER_BATCH
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from cli.stack import prepare_environment, worker_command, worker_metrics_env
from shared.settings import get_settings
from worker.pipelines import saliency_method


def slow_down(seconds: float) -> None:
    original = saliency_method.SaliencyPipeline.run_batch

    def run_batch(self: Any, items: Any) -> Any:
        time.sleep(seconds)
        return original(self, items)

    saliency_method.SaliencyPipeline.run_batch = run_batch  # type: ignore[method-assign]


def main() -> None:
    slow_down(float(sys.argv[1]))
    settings = get_settings()
    prepare_environment(settings)
    os.environ.update(worker_metrics_env(settings))  # before the worker imports prometheus-client
    from worker.celery_app import app  # the patched class is inherited by the prefork children

    app.worker_main(
        worker_command(1, events=settings.task_events)[5:]
    )  # the options of `fovea worker`, from its "worker" on


if __name__ == "__main__":
    main()
