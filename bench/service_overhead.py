"""What the service costs over a bare loop, and how fast it accepts jobs.

Same saliency work over the same archive, written to the same S3 server, twice:
  1. a bare in-process loop: decode, run the pipeline in batches, write outputs;
  2. through the service: API over HTTP, Redis broker and coordinator, one Celery worker, S3 (with
     ``--control-worker``, as docker compose deploys it: the worker takes items only, and planning and
     finalising run on a control worker of their own at a lower CPU priority).
Prints one JSON line per figure, the ratio of the two, where the service's time went (from the worker's
log), and submission latency p50/p99 over many POSTs.
The bare loop runs again after the service: the ratio is taken against the mean of the runs before and
after, so that a drift of the machine's speed through the run (a shared VM's) weighs on both sides. With
``--rounds N`` the service and the bare loop alternate N times (bare, service, bare, service, ..., bare),
the stack started afresh each round: one ratio a round, and their median.

    .venv/bin/python bench/service_overhead.py [--items 2000] [--method spectral_residual] [--submissions 1000] [--packed]
        [--store moto|seaweedfs] [--rounds 1] [--shard-items 128] [--control-worker]

moto (the default) is an in-process Python server whose own costs weigh on both loops; ``--store
seaweedfs`` uses the S3 server of the scale runs. The jobs submitted to time submission go to a Redis and
a bucket of their own, with no worker, so none of their work mixes with the timed jobs'.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tarfile
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.kinds import parse_spec  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.specs.saliency import SaliencySpec  # noqa: E402
from shared.storage import open_storage  # noqa: E402
from tests.support.images import add_bytes, jpeg  # noqa: E402
from tests.support.procs import start_moto, start_redis, start_seaweed, wait_until  # noqa: E402
from tests.support.s3 import new_bucket  # noqa: E402
from tests.support.stack import Stack, distributed_env, upload_archive, wait_for_job  # noqa: E402
from worker.inputs.archive import iter_members  # noqa: E402
from worker.inputs.decode import decode_image  # noqa: E402
from worker.pipelines.base import Item  # noqa: E402
from worker.pipelines.saliency_method import SaliencyPipeline  # noqa: E402
from worker.runtime.context import JobContext  # noqa: E402
from worker.runtime.models import ModelCache  # noqa: E402
from worker.runtime.packing import PackWriter  # noqa: E402

SHARD_ITEMS = 128
SEAWEED_KEYS = ("bench-access", "bench-secret-key")


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def make_archive(path: Path, items: int) -> None:
    with tarfile.open(path, "w") as archive:
        for i in range(items):
            add_bytes(archive, f"img/{i:05d}.jpg", jpeg(96, 96, seed=i))


def bare_loop(settings: Settings, archive: Path, spec: dict[str, object], pack_every: int) -> float:
    """The work as a user would script it: no queue, no shards, no bookkeeping. With ``pack_every``, the
    outputs go into one tar per that many items, as the service packs them (the same writes)."""
    parsed = parse_spec({**spec, "input": "upload://bare"})
    assert isinstance(parsed, SaliencySpec)
    storage = open_storage(settings)
    pack = PackWriter(storage, "bench", "bare", 0) if pack_every else None
    ctx = JobContext(storage, ModelCache(settings, storage), "bench", "bare", torch.device("cpu"), pack=pack)
    pipeline = SaliencyPipeline(parsed, ctx)
    start = time.perf_counter()
    batch: list[Item] = []
    count = 0

    def run() -> None:
        nonlocal count, batch
        pipeline.run_batch(batch)
        count += len(batch)
        batch = []
        if pack is not None and count % pack_every < pipeline.batch_size:
            pack.seal()

    with archive.open("rb") as stream:
        for index, member in enumerate(iter_members(stream, archive.name, max_bytes=settings.max_item_bytes)):
            assert member.data is not None
            image = decode_image(member.data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_item_bytes)
            batch.append(Item(index, member.name, image))
            if len(batch) == pipeline.batch_size:
                run()
    if batch:
        run()
    if pack is not None:
        pack.seal()
    return count / (time.perf_counter() - start)


def submission_latency(client: Any, job: dict[str, object], submissions: int, redis_port: int) -> None:
    """POST ``submissions`` jobs (no worker runs), print p50/p99, then cancel them and drop their queued plans."""
    latencies, submitted = [], []
    for _ in range(submissions):
        t0 = time.perf_counter()
        response = client.post("/v1/jobs", json=job)
        latencies.append(time.perf_counter() - t0)
        assert response.status_code == 201, response.text
        submitted.append(response.json()["id"])
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    emit(
        figure="submission_latency_ms",
        p50=round(statistics.median(latencies) * 1000, 2),
        p99=round(p99 * 1000, 2),
        submissions=submissions,
        goal="p99 < 50 ms",
    )
    # Canceled, then their queued plans dropped: only canceling them keeps the reconciler from sending
    # their plans again (a queued job with nothing queued for it is restored), which would put their work
    # into the timed job's.
    for job_id in submitted:
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    redis.Redis(port=redis_port, db=0).flushdb()


def submissions_alone(
    work: Path, endpoint: str, keys: tuple[str, str], archive: Path, spec: dict[str, object], submissions: int
) -> None:
    """Submission latency with no worker, on a Redis and a bucket of its own: submission alone, on a store not
    yet full (moto lists a prefix in time proportional to the whole bucket, which real S3 does not). Its own,
    so that the canceled jobs' work, which a worker's reconciler finishes off, never runs among a timed job's
    shards (twenty such plan tasks took about 2 s of the first timed job)."""
    redis_proc, redis_port = start_redis(work / "redis-submissions")
    env = distributed_env(f"redis://127.0.0.1:{redis_port}", endpoint, new_bucket(endpoint, *keys))
    stack = Stack(
        work / "submissions",
        env | {"FOVEA_S3_ACCESS_KEY_ID": keys[0], "FOVEA_S3_SECRET_ACCESS_KEY": keys[1]},
        workers=0,
    )
    try:
        with stack.client("key-a") as client:
            uri = upload_archive(client, archive)
            submission_latency(client, {**spec, "input": uri}, submissions, redis_port)
    finally:
        stack.stop()
        redis_proc.stop()


def timed_job(stack: Stack, client: Any, job: dict[str, object], items: int) -> float:
    """Start one worker (not timed), then time one job from its POST to ``succeeded``: items a second."""
    worker = stack.start_worker(len(stack.workers))
    stack.workers.append(worker)
    for started in [worker, *([stack.control] if stack.control is not None else [])]:
        wait_until(lambda started=started: "ready." in started.tail(200), 120, "the workers to start")
    posted_at, start = time.time(), time.perf_counter()
    posted = client.post("/v1/jobs", json=job).json()
    final = wait_for_job(client, posted["id"], timeout=3600)
    seconds = time.perf_counter() - start
    assert final["status"] == "succeeded" and final["progress"]["done"] == items, final
    assert worker.log is not None
    control = stack.control.log if stack.control is not None else None
    phases(worker.log, control, posted_at, seconds)
    return items / seconds


_TASK_ENDED = re.compile(r"\[(\S+ \S+): INFO/\S+\] Task fovea\.(\w+)\[\S+\] succeeded in ([\d.]+)s")


def phases(log: Path, control: Path | None, posted_at: float, seconds: float) -> None:
    """Where the job's time went, from the workers' logs (Celery logs each task's end and duration): before
    the first shard started, in shard tasks (a shard's tail runs behind, outside them), between tasks, and
    from the last shard's end to ``succeeded`` (the finaliser, the last tail, the poll); and the planning
    and finalising tasks' own seconds (on ``control``'s log when a control worker ran them)."""
    ended = []
    for path in [log, *([control] if control is not None else [])]:
        for line in path.read_text(errors="replace").splitlines():
            found = _TASK_ENDED.search(line)
            if found:
                at = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                ended.append((at, found[2], float(found[3])))
    shards = [(at, took) for at, task, took in ended if task == "shard" and at >= posted_at]
    if not shards:
        return
    first_start = min(at - took for at, took in shards) - posted_at
    last_end = max(at for at, _ in shards) - posted_at
    in_shards = sum(took for _, took in shards)
    emit(
        figure="service_phases_s",
        before_first_shard=round(first_start, 2),
        in_shard_tasks=round(in_shards, 2),
        between_shard_tasks=round(last_end - first_start - in_shards, 2),
        after_last_shard=round(seconds - last_end, 2),
        shard_tasks=len(shards),
        shard_task_median=round(statistics.median(took for _, took in shards), 3),
        planning_tasks=round(sum(took for at, task, took in ended if task == "plan" and at >= posted_at), 2),
        finalising_task=round(sum(took for at, task, took in ended if task == "finalize" and at >= posted_at), 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--method", default="spectral_residual", choices=["spectral_residual"])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--packed", action="store_true", help="packed outputs (a tar per shard) in both loops")
    parser.add_argument(
        "--store", choices=["moto", "seaweedfs"], default="moto", help="the S3 server both loops write to"
    )
    parser.add_argument("--rounds", type=int, default=1, help="service and bare loop alternated this many times")
    parser.add_argument(
        "--shard-items", type=int, default=SHARD_ITEMS, help="the service's shard (and the bare loop's pack) size"
    )
    parser.add_argument(
        "--control-worker",
        action="store_true",
        help="plan and finalise on a control worker of its own (nice 10), as docker compose deploys; the worker takes items only",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # the worker runs one pool child; give the bare loop the same
    work = Path(tempfile.mkdtemp(prefix="fovea-bench-"))
    archive = work / "bench.tar"
    make_archive(archive, args.items)
    redis_proc, redis_port = start_redis(work / "redis")
    if args.store == "moto":
        keys = ("testing", "testing")
        store_proc, endpoint = start_moto(work / "moto")
    else:
        keys = SEAWEED_KEYS
        store_proc, endpoint = start_seaweed(work / "weed", *keys)
    bucket = new_bucket(endpoint, *keys)
    env = distributed_env(f"redis://127.0.0.1:{redis_port}", endpoint, bucket, FOVEA_SHARD_ITEMS=str(args.shard_items))
    env |= {"FOVEA_S3_ACCESS_KEY_ID": keys[0], "FOVEA_S3_SECRET_ACCESS_KEY": keys[1]}
    settings = Settings(
        data_dir=work / "bare",
        storage_url=f"s3://{bucket}/bare",
        s3_endpoint_url=endpoint,
        s3_access_key_id=keys[0],
        s3_secret_access_key=keys[1],
    )
    spec = {"kind": "saliency", "method": args.method, "batch_size": 32, "packed_outputs": args.packed}
    stack = None
    try:
        bare_runs = [bare_loop(settings, archive, spec, args.shard_items if args.packed else 0)]
        emit(
            figure="bare_loop_items_per_s",
            value=round(bare_runs[0], 1),
            items=args.items,
            packed=args.packed,
            store=args.store,
        )
        submissions_alone(work, endpoint, keys, archive, spec, args.submissions)
        ratios = []
        for round_ in range(args.rounds):
            stack = Stack(
                work / f"stack{round_}", env | {"OMP_NUM_THREADS": "1"}, workers=0, control_worker=args.control_worker
            )
            with stack.client("key-a") as client:
                uri = upload_archive(client, archive)
                service = timed_job(stack, client, {**spec, "input": uri}, args.items)
                emit(
                    figure="service_items_per_s",
                    value=round(service, 1),
                    items=args.items,
                    packed=args.packed,
                    control_worker=args.control_worker,
                )
            stack.stop()  # an idle worker and API still take some CPU: gone before the bare loop runs again
            stack = None
            bare_runs.append(bare_loop(settings, archive, spec, args.shard_items if args.packed else 0))
            emit(figure="bare_loop_after_items_per_s", value=round(bare_runs[-1], 1))
            before, after = bare_runs[-2:]
            ratios.append(service / ((before + after) / 2))
            emit(
                figure="service_vs_bare_ratio",
                round=round_ + 1,
                value=round(ratios[-1], 3),
                against_before=round(service / before, 3),
                against_after=round(service / after, 3),
                goal=">= 0.95" if args.packed else ">= 0.85",
            )
        if args.rounds > 1:
            emit(
                figure="service_vs_bare_ratio_median",
                value=round(statistics.median(ratios), 3),
                rounds=[round(r, 3) for r in ratios],
                goal=">= 0.95" if args.packed else ">= 0.85",
            )
    finally:
        if stack is not None:
            stack.stop()
        redis_proc.stop()
        store_proc.stop()


if __name__ == "__main__":
    main()
