"""Celery configuration shared by the API (which only sends) and the workers (which run tasks).

Plain data, no celery import: ``shared`` stays free of the task framework. See DESIGN: acks late,
requeue on worker loss, prefetch 1, and a hard time limit well below the Redis visibility timeout.
"""

from __future__ import annotations

from typing import Any

from shared.settings import Settings

# Task names: the API sends the first by name (it never imports the worker); the workers define all four.
PLAN_TASK = "fovea.plan"
SHARD_TASK = "fovea.shard"
FINALIZE_TASK = "fovea.finalize"
TRAIN_STEP_TASK = "fovea.train_step"

# Two queues. Items (shards, training steps) are the work the GPUs are for; control (planning and
# finalising a job) reads and writes the store and the coordinator and uses no model. Kept apart, control
# can run on a process of its own (`fovea worker --queues control --nice 10`) that never takes a GPU
# worker's slot; a worker that consumes both (the default) runs either, as one queue would.
QUEUE = "fovea"
CONTROL_QUEUE = "fovea-control"
QUEUES = {"items": QUEUE, "control": CONTROL_QUEUE}
_CONTROL_TASKS = frozenset({PLAN_TASK, FINALIZE_TASK})


def queue_of(task: str) -> str:
    """The queue a task is sent to."""
    return CONTROL_QUEUE if task in _CONTROL_TASKS else QUEUE


def celery_config(settings: Settings) -> dict[str, Any]:
    broker = settings.resolved_broker_url()
    if broker.startswith("filesystem://"):
        folder = settings.broker_folder()
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport: dict[str, Any] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            # kombu keeps its broadcast tables in ./control unless told otherwise: keep them here.
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # kombu polls the folder; the default 1 s makes every task wait about a second.
            "polling_interval": 0.02,
        }
    else:
        transport = {
            "visibility_timeout": settings.visibility_timeout_s,
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
        }
    if settings.task_time_limit_s >= settings.visibility_timeout_s:
        raise ValueError("FOVEA_TASK_TIME_LIMIT_S must be well below FOVEA_VISIBILITY_TIMEOUT_S")
    return {
        "broker_url": broker,
        "broker_transport_options": transport,
        "result_backend": None,
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "visibility_timeout": settings.visibility_timeout_s,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_default_queue": QUEUE,
        "task_routes": {task: {"queue": CONTROL_QUEUE} for task in sorted(_CONTROL_TASKS)},
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": settings.task_events,  # Flower's task view
        "task_send_sent_event": False,
    }
