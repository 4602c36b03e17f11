"""Planning alone, in-process against SeaweedFS: an archive planned in one step and in short steps (how a
big input is planned within the task limit), for each format; MB/s, members/s, and the store's side."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from shared import keys
from shared.kinds import parse_spec
from shared.queueing import SHARD_TASK
from shared.settings import Settings
from tests.support.procs import start_seaweed
from tests.support.runtime import recording_resources, sent_tasks
from tests.support.s3 import new_bucket
from worker.engine.plan import plan_step

KEYS = ("bench-access", "bench-secret-key")


def plan_formats(work: Path, archives: list[Path], items: int, emit: Callable[..., None]) -> None:
    weed, endpoint = start_seaweed(work / "weed", *KEYS)
    try:
        bucket = new_bucket(endpoint, *KEYS)
        base = Settings(
            data_dir=work / "data",
            storage_url=f"s3://{bucket}",
            s3_endpoint_url=endpoint,
            s3_access_key_id=KEYS[0],
            s3_secret_access_key=KEYS[1],
            shard_items=256,
        )
        for archive in archives:
            for step_s in (300.0, 5.0):
                _plan_once(base.model_copy(update={"plan_step_s": step_s}), archive, items, emit)
    finally:
        weed.stop()


def _plan_once(settings: Settings, archive: Path, items: int, emit: Callable[..., None]) -> None:
    rt = recording_resources(settings)
    services = rt.services
    upload = archive.name.replace(".", "-")
    with archive.open("rb") as stream:
        services.storage.put_stream(keys.upload("bench", upload, archive.name), stream)
    spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": f"upload://{upload}"})
    job_id = services.jobs.create("bench", spec.kind, spec.model_dump(mode="json"), None).id
    start, step, state = time.perf_counter(), 0, {"complete": False}
    steps: list[float] = []
    while not state["complete"]:
        began = time.perf_counter()
        state = plan_step(services, "bench", job_id, spec, step)
        steps.append(time.perf_counter() - began)
        step += 1
    seconds = time.perf_counter() - start
    assert state["total"] == items, state["total"]
    written = [info for info in services.storage.list(keys.job_prefix("bench", job_id))]
    emit(
        figure="planning",
        archive=archive.name,
        step_s=settings.plan_step_s,
        steps=step,
        longest_step_s=round(max(steps), 2),
        seconds=round(seconds, 2),
        mb_per_s=round(archive.stat().st_size / 1e6 / seconds, 1),
        members_per_s=round(items / seconds),
        shards=state["shards"],
        objects_written=len(written),
        bytes_written_mb=round(sum(info.size for info in written) / 1e6, 1),
        shard_tasks_sent=sum(1 for name, _ in sent_tasks(rt) if name == SHARD_TASK),
    )
