"""How the service's cost grows with a job (one JSON line per figure).

``stack``: a big archive of small JPEGs through the distributed stack on this machine (redis-server,
SeaweedFS, the API, two workers; spectral residual, packed outputs): throughput over the first and the
last window of items and their ratio, peak RSS of every process sampled through the run (and at each
quarter, to show it flat), the CPU time of every process in every window, planning and finalising
times, every item exactly once checked from the results pages, and the objects in the store per item
(packed here; per-item from a small second job). ``--warmup N`` runs a job of N items first.

``planning``: planning alone, in-process against the same kind of S3 server, for a plain tar, a tar.gz
and a zip of the same members: MB/s, members/s, steps, and what it writes to the store.

``pages``: a million-item job made of generated shard manifests (``bench/scale_pages.py``).

    .venv/bin/python bench/scale.py stack [--items 100000] [--window 10000] [--workers 2] [--warmup 20000]
                                          [--control-worker]
    .venv/bin/python bench/scale.py planning [--items 100000]
    .venv/bin/python bench/scale.py pages [--items 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.images import add_bytes, jpeg  # noqa: E402
from tests.support.procs import start_redis, start_seaweed  # noqa: E402
from tests.support.s3 import client as s3_client  # noqa: E402
from tests.support.s3 import new_bucket  # noqa: E402
from tests.support.stack import Stack, distributed_env, upload_archive  # noqa: E402

KEYS = ("bench-access", "bench-secret-key")
SPEC = {"kind": "saliency", "method": "spectral_residual", "batch_size": 32, "packed_outputs": True}


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def make_archive(path: Path, items: int, distinct: int = 500) -> None:
    """``items`` small JPEGs (64x64, about 2 KB), ``distinct`` different pictures under unique names."""
    pictures = [jpeg(64, 64, seed=i) for i in range(min(items, distinct))]
    with tarfile.open(path, "w") as archive:
        for i in range(items):
            add_bytes(archive, f"img/{i:06d}.jpg", pictures[i % len(pictures)])


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """The process's CPU time so far (user + system), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_idle_s() -> float:
    """Idle CPU time of the whole machine so far (idle + iowait, every core), in seconds."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Sampler:
    """Every half second: the job's progress, whether planning is done, every process's RSS and CPU time,
    and the machine's idle time."""

    def __init__(self, client: Any, job_id: str, processes: dict[str, int]) -> None:
        self.client, self.job_id, self.processes = client, job_id, processes
        self.samples: list[dict[str, Any]] = []
        self.planned_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            job = self.client.get(f"/v1/jobs/{self.job_id}").json()
            if self.planned_at is None:
                page = self.client.get(f"/v1/jobs/{self.job_id}/results", params={"limit": 1}).json()
                if page["planned"]:
                    self.planned_at = now
            pids = dict(self.processes)
            for name, pid in self.processes.items():
                if (name.startswith("worker") or name == "control") and "." not in name:
                    for number, child in enumerate(children(pid)):
                        pids[f"{name}.child{number}"] = child
            rss = {name: rss_mb(pid) for name, pid in pids.items()}
            cpu = {name: cpu_s(pid) for name, pid in pids.items()} | {"idle": machine_idle_s()}
            done = job["progress"]["done"] + job["progress"]["failed"]
            self.samples.append({"t": now, "done": done, "status": job["status"], "rss": rss, "cpu": cpu})

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_between(self, first: int, last: int) -> dict[str, float]:
        """CPU seconds each process (and the machine's idle time) used while items ``first`` to ``last`` were
        done, from the samples nearest those counts."""
        start = next(s for s in self.samples if s["done"] >= first)
        end = next(s for s in self.samples if s["done"] >= last)
        return {name: round(end["cpu"][name] - start["cpu"].get(name, 0.0), 1) for name in end["cpu"]}

    def time_at(self, count: int) -> float:
        """When ``count`` items were done (linear between samples)."""
        before = None
        for sample in self.samples:
            if sample["done"] >= count:
                if before is None or sample["done"] == before["done"]:
                    return float(sample["t"])
                share = (count - before["done"]) / (sample["done"] - before["done"])
                return float(before["t"] + share * (sample["t"] - before["t"]))
            before = sample
        raise ValueError(f"never reached {count} items")


def count_objects(endpoint: str, bucket: str, prefix: str) -> Counter[str]:
    s3 = s3_client(endpoint, *KEYS)
    kinds: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(prefix) :]
            kinds[rest.split("/", 1)[0] if "/" in rest else rest] += 1
    return kinds


def check_exactly_once(client: Any, job_id: str, items: int) -> None:
    names: Counter[str] = Counter()
    offset = 0
    while True:
        page = client.get(f"/v1/jobs/{job_id}/results", params={"offset": offset, "limit": 10_000}).json()
        names.update(item["name"] for item in page["items"] if item["status"] == "ok")
        if page["next_offset"] is None:
            break
        offset = page["next_offset"]
    expected = {f"img/{i:06d}.jpg" for i in range(items)}
    assert set(names) == expected and set(names.values()) == {1}, "some item is missing or repeated"


def stack(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="fovea-scale-"))
    archive = work / "big.tar"
    make_archive(archive, args.items)
    emit(figure="archive", items=args.items, mb=round(archive.stat().st_size / 1e6, 1))
    redis_proc, redis_port = start_redis(work / "redis")
    weed, endpoint = start_seaweed(work / "weed", *KEYS)
    bucket = new_bucket(endpoint, *KEYS)
    env = distributed_env(f"redis://127.0.0.1:{redis_port}", endpoint, bucket, FOVEA_SHARD_ITEMS=str(args.shard_items))
    env |= {"FOVEA_S3_ACCESS_KEY_ID": KEYS[0], "FOVEA_S3_SECRET_ACCESS_KEY": KEYS[1], "OMP_NUM_THREADS": "1"}
    running = Stack(work / "stack", env, workers=args.workers, control_worker=args.control_worker)
    try:
        with running.client("key-a") as client:
            uri = upload_archive(client, archive)
            processes = {"api": running.api.pid, "redis": redis_proc.pid, "seaweedfs": weed.pid}
            processes |= {f"worker{i}": worker.pid for i, worker in enumerate(running.workers)}
            if running.control is not None:
                processes["control"] = running.control.pid
            time.sleep(20)  # the workers start (not part of the timing)
            if args.warmup:
                warm(client, work, args.warmup)
            start = time.monotonic()
            job = client.post("/v1/jobs", json={**SPEC, "input": uri}).json()
            with Sampler(client, job["id"], processes) as sampler:
                while client.get(f"/v1/jobs/{job['id']}").json()["status"] not in ("succeeded", "failed", "canceled"):
                    time.sleep(1)
                time.sleep(1)
            report(sampler, start, args)
            check_exactly_once(client, job["id"], args.items)
            emit(figure="exactly_once", items=args.items, checked="every name once, from the results pages")
            packed = count_objects(endpoint, bucket, f"tenants/alice/jobs/{job['id']}/")
            emit(figure="objects_packed", per_item=round(sum(packed.values()) / args.items, 4), by_kind=dict(packed))
            small = client.post("/v1/jobs", json={**SPEC, "packed_outputs": False, "input": upload_small(client, work)})
            small_id = small.json()["id"]
            while client.get(f"/v1/jobs/{small_id}").json()["status"] not in ("succeeded", "failed"):
                time.sleep(1)
            plain = count_objects(endpoint, bucket, f"tenants/alice/jobs/{small_id}/")
            emit(figure="objects_per_item_outputs", per_item=round(sum(plain.values()) / 2000, 4), by_kind=dict(plain))
    finally:
        running.stop()
        weed.stop()
        redis_proc.stop()
        shutil.rmtree(work, ignore_errors=True)


def warm(client: Any, work: Path, items: int) -> None:
    """A job of ``items`` run to its end before the timed one, on the same processes and store: what a
    stack that has run before gives a job (the workers' first shards, the store after a big upload)."""
    path = work / "warm.tar"
    make_archive(path, items)
    started = time.monotonic()
    job_id = client.post("/v1/jobs", json={**SPEC, "input": upload_archive(client, path)}).json()["id"]
    while client.get(f"/v1/jobs/{job_id}").json()["status"] not in ("succeeded", "failed", "canceled"):
        time.sleep(1)
    emit(figure="warmup_job", items=items, seconds=round(time.monotonic() - started, 1))


def upload_small(client: Any, work: Path) -> str:
    path = work / "small.tar"
    make_archive(path, 2000)
    return upload_archive(client, path)


def report(sampler: Sampler, start: float, args: argparse.Namespace) -> None:
    samples, window = sampler.samples, args.window
    first_item = sampler.time_at(1)
    first = window / (sampler.time_at(window) - first_item)
    last = window / (sampler.time_at(args.items) - sampler.time_at(args.items - window))
    emit(figure="throughput_first_window_items_per_s", value=round(first, 1), window=window)
    emit(figure="throughput_last_window_items_per_s", value=round(last, 1), window=window)
    emit(figure="last_over_first", value=round(last / first, 3), goal="within 10% (0.90 to 1.10)")
    starts = range(0, args.items - window + 1, window)
    rates = [window / (sampler.time_at(start + window) - sampler.time_at(max(start, 1))) for start in starts]
    emit(figure="every_window_items_per_s", values=[round(rate, 1) for rate in rates], window=window)
    # Where the machine's CPU went in each window: a window slower than the rest shows what else ran in it.
    for start_at in starts:
        used = sampler.cpu_between(max(start_at, 1), start_at + window)
        emit(figure="cpu_s_in_window", window_start=start_at, **used)
    emit(figure="whole_job_items_per_s", value=round(args.items / (samples[-1]["t"] - start), 1))
    if sampler.planned_at is not None:
        emit(figure="planning_s", value=round(sampler.planned_at - start, 1), note="while shards already run")
    ended = next(s["t"] for s in samples if s["status"] == "succeeded")
    emit(figure="finalising_s", value=round(ended - sampler.time_at(args.items), 1), note="last item to succeeded")
    names = sorted({name for sample in samples for name in sample["rss"]})
    for name in names:
        series = [sample["rss"].get(name, 0.0) for sample in samples]
        quarters = [series[min(len(series) - 1, int(q * len(series)))] for q in (0.25, 0.5, 0.75, 0.99)]
        emit(figure="rss_mb", process=name, peak=round(max(series), 1), at_quarters=[round(v, 1) for v in quarters])


def planning(args: argparse.Namespace) -> None:
    from bench.scale_planning import plan_formats

    work = Path(tempfile.mkdtemp(prefix="fovea-plan-"))
    try:
        archive = work / "big.tar"
        make_archive(archive, args.items)
        gz = work / "big.tar.gz"
        gz.write_bytes(gzip.compress(archive.read_bytes(), compresslevel=6))
        zipped = work / "big.zip"
        with tarfile.open(archive) as tar, zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as out:
            for member in tar:
                handle = tar.extractfile(member)
                out.writestr(member.name, handle.read() if handle else b"")
        plan_formats(work, [archive, gz, zipped], args.items, emit)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    run = sub.add_parser("stack")
    run.add_argument("--items", type=int, default=100_000)
    run.add_argument("--window", type=int, default=10_000)
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--shard-items", type=int, default=256)
    run.add_argument("--warmup", type=int, default=0, help="run a job of this many items first (0: none)")
    run.add_argument(
        "--control-worker",
        action="store_true",
        help="plan and finalise on a control worker of its own (nice 10); the workers take items only",
    )
    plan = sub.add_parser("planning")
    plan.add_argument("--items", type=int, default=100_000)
    pages = sub.add_parser("pages")
    pages.add_argument("--items", type=int, default=1_000_000)
    pages.add_argument("--shard-items", type=int, default=64)
    pages.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if args.part == "stack":
        stack(args)
    elif args.part == "planning":
        planning(args)
    else:
        from bench.scale_pages import pages as run_pages

        run_pages(args, emit)


if __name__ == "__main__":
    main()
