"""What the web console asks of the API, timed at the API over HTTP: a 100k-item job's gallery pages (the
first, and any later one; by status, sorted by a numeric field, by class) and the jobs list of a tenant
with 10k jobs. The API runs as its own process (uvicorn, embedded default: local store, SQLite
coordinator) on a job generated the way the finaliser leaves one (shard manifests of 64 items, the
shard index, a summary), since running 100k items here would take hours.

Anchor, in the same run: what browsing cost before the console's pages, the whole ``manifest.json`` of
the job fetched and parsed to cut one page out of it. Prints one JSON line per figure:
p50 and p99 over ``--requests`` requests of ``--page`` items each, and the ratio to the anchor.

    .venv/bin/python -m bench.console [--items 100000] [--jobs 10000] [--requests 200] [--page 48]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shared import keys
from shared.jobs import JobStatus
from shared.jobstore import LIVE
from shared.kinds import parse_spec
from shared.settings import Settings
from tests.support.procs import Proc, free_port, wait_until
from tests.support.runtime import recording_resources
from tests.support.synthetic_jobs import ended_job

log = logging.getLogger("bench.console")
KEY = "bench-key"
REPO = Path(__file__).resolve().parents[1]


def _emit(**figure: Any) -> None:
    sys.stdout.write(json.dumps(figure) + "\n")
    sys.stdout.flush()


def _timed(client: httpx.Client, requests: int, path: Callable[[int], str]) -> tuple[float, float]:
    """p50 and p99 in ms of ``requests`` GETs (each checked: a 200 with a body)."""
    spent = []
    for n in range(requests):
        start = time.perf_counter()
        response = client.get(path(n))
        spent.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path(n)}: {response.status_code} {response.text[:200]}")
    spent.sort()
    return round(statistics.median(spent), 2), round(spent[min(len(spent) - 1, int(len(spent) * 0.99))], 2)


def _many_jobs(settings: Settings, count: int) -> None:
    rt = recording_resources(settings)
    spec = parse_spec({"kind": "saliency", "method": "spectral_residual", "input": "builtin:shapes"})
    body = spec.model_dump(mode="json")
    for n in range(count):
        record = rt.services.jobs.create("bench", spec.kind, body, f"job {n}")
        if n % (count // 3) == 1:  # three failed jobs among the queued: a filter few jobs match
            rt.services.jobs.transition("bench", record.id, JobStatus.failed, LIVE, error="bench")
    # As a store written before the facet index of jobs: the API enters them in it at the first filtered list.
    shutil.rmtree(rt.services.storage.root / keys.tenant_prefix("bench") / "index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--page", type=int, default=48, help="items a gallery page asks for (the console's)")
    parser.add_argument("--part", choices=("all", "gallery", "jobs"), default="all", help="what to measure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="fovea-bench-console-") as folder:
        data = Path(folder) / "data"
        settings = Settings(data_dir=data, api_keys=f"{KEY}=bench", signing_secret="bench")
        rt = recording_resources(settings)
        store = rt.services.storage
        start = time.perf_counter()
        job_id = ended_job(store, rt.services.jobs, "bench", args.items, shard_items=64, fail_every=50)
        # The anchor's input: the whole manifest, as the finaliser writes it.
        items = [row for shard in range(0, args.items, 64) for row in _shard(store, job_id, shard // 64)]
        store.put_json(keys.manifest("bench", job_id), {"job": job_id, "total": len(items), "items": items})
        del items
        log.info("generated a %d-item job in %.1f s", args.items, time.perf_counter() - start)
        start = time.perf_counter()
        _many_jobs(settings, args.jobs)
        log.info("generated %d more jobs in %.1f s", args.jobs, time.perf_counter() - start)

        port = free_port()
        env = {"FOVEA_DATA_DIR": str(data), "FOVEA_API_KEYS": f"{KEY}=bench", "FOVEA_SIGNING_SECRET": "bench"}
        env |= {"FOVEA_BROKER_URL": "", "FOVEA_REDIS_URL": "", "FOVEA_STORAGE_URL": ""}
        api = Proc(
            [sys.executable, "-m", "cli.main", "api", "--port", str(port)],
            env=env,
            log=Path(folder) / "api.log",
            cwd=REPO,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, 60, "API ready")
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
                _measure(client, job_id, args, lambda: store.size(keys.jobs_index_built("bench")) is not None)
        finally:
            api.stop()


def _shard(store: Any, job_id: str, shard: int) -> list[dict[str, Any]]:
    return list(store.get_json(keys.shard_manifest("bench", job_id, shard))["items"])


def _measure(client: httpx.Client, job_id: str, args: argparse.Namespace, indexed: Callable[[], bool]) -> None:
    if args.part in ("all", "gallery"):
        _gallery(client, job_id, args)
    if args.part in ("all", "jobs"):
        _jobs(client, args, indexed)


def _gallery(client: httpx.Client, job_id: str, args: argparse.Namespace) -> None:
    n, page, requests = args.items, args.page, args.requests
    rng = random.Random(0)
    offsets = [rng.randrange(0, n - page) for _ in range(requests)]
    results = f"/v1/jobs/{job_id}/results"
    common = {"items": n, "page": page, "requests": requests, "unit": "ms"}

    # The anchor: the whole manifest fetched (presigned URL) and parsed, one page cut out of it.
    manifest_url = client.get(results, params={"limit": 1}).json()["manifest"]
    spent = []
    for _ in range(5):
        begin = time.perf_counter()
        rows = httpx.get(manifest_url, timeout=120).json()["items"]
        _ = rows[offsets[0] : offsets[0] + page]
        spent.append((time.perf_counter() - begin) * 1000)
    anchor = round(statistics.median(spent), 1)
    _emit(figure="anchor: whole manifest fetched and parsed for one page", p50=anchor, **common | {"requests": 5})

    def figure(name: str, path: Callable[[int], str], warm: bool = True) -> None:
        if warm:
            client.get(path(0))  # the first request of a kind (kept index, a view) is counted apart
        p50, p99 = _timed(client, requests, path)
        _emit(figure=name, p50=p50, p99=p99, ratio_to_anchor_p99=round(anchor / p99, 1), **common)

    figure("gallery: first page", lambda _: f"{results}?offset=0&limit={page}")
    figure("gallery: any later page", lambda i: f"{results}?offset={offsets[i]}&limit={page}")
    figure(
        "gallery: failed items, any page", lambda i: f"{results}?status=failed&offset={offsets[i] // 50}&limit={page}"
    )
    for sort in ("-quality.deletion_auc", "predictions.0.probability"):
        begin = time.perf_counter()
        built = client.get(results, params={"sort": sort, "limit": page})
        built.raise_for_status()
        _emit(
            figure=f"sorted view built on first use: {sort}",
            ms=round((time.perf_counter() - begin) * 1000, 1),
            **common,
        )
        figure(f"gallery sorted by {sort}: first page", lambda _, s=sort: f"{results}?sort={s}&limit={page}")
        figure(
            f"gallery sorted by {sort}: any later page",
            lambda i, s=sort: f"{results}?sort={s}&offset={offsets[i]}&limit={page}",
        )
    begin = time.perf_counter()
    client.get(results, params={"class": "square", "sort": "-quality.deletion_auc", "limit": page}).raise_for_status()
    _emit(
        figure="class view built on first use: square, by deletion AUC",
        ms=round((time.perf_counter() - begin) * 1000, 1),
        **common,
    )
    figure(
        "gallery of one class sorted: any later page",
        lambda i: f"{results}?class=square&sort=-quality.deletion_auc&offset={offsets[i] // 4}&limit={page}",
    )


def _jobs(client: httpx.Client, args: argparse.Namespace, indexed: Callable[[], bool]) -> None:
    """The jobs list: 10k jobs, newest first, first page and later pages (cursors collected first)."""
    requests = args.requests
    jobs_common = {"jobs": args.jobs + 1, "page": 50, "requests": requests, "unit": "ms"}
    cursors, cursor = [], None
    while len(cursors) < 100:
        listed = client.get(
            "/v1/jobs", params={"order": "newest", "limit": 50} | ({"cursor": cursor} if cursor else {})
        )
        cursor = listed.json()["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
    # The jobs were written straight to the store, as by a version without the facet index: the first
    # filtered list scans and starts entering them; the figures below are taken once it is built.
    begin = time.perf_counter()
    client.get("/v1/jobs", params={"status": "failed"}).raise_for_status()
    _emit(
        figure="jobs list: first filtered list, a scan",
        ms=round((time.perf_counter() - begin) * 1000, 1),
        **jobs_common,
    )
    wait_until(indexed, 600, "the jobs index built")
    _emit(
        figure="jobs list: older jobs indexed in the background",
        ms=round((time.perf_counter() - begin) * 1000, 1),
        **jobs_common,
    )
    for name, path in (
        ("jobs list: first page", lambda _: "/v1/jobs?order=newest&limit=50"),
        ("jobs list: failed jobs (3 of them)", lambda _: "/v1/jobs?order=newest&limit=50&status=failed"),
        (
            "jobs list: queued jobs, later pages",
            lambda i: f"/v1/jobs?limit=50&status=queued&cursor={cursors[i % len(cursors)]}",
        ),
        ("jobs list: later pages", lambda i: f"/v1/jobs?order=newest&limit=50&cursor={cursors[i % len(cursors)]}"),
        ("jobs list: first page of one kind", lambda _: "/v1/jobs?order=newest&limit=50&kind=saliency"),
    ):
        p50, p99 = _timed(client, requests, path)
        _emit(figure=name, p50=p50, p99=p99, **jobs_common)


if __name__ == "__main__":
    main()
