"""``fovea``: run the service, submit jobs, follow them and fetch their results.

The client commands talk to FOVEA_API_URL (default http://127.0.0.1:8000) with FOVEA_API_KEY.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cli import commands
from cli.client import ApiFailure, Client
from shared.settings import get_settings

EPILOG = """examples:
  fovea up                                   # API + worker on this machine (local storage, no broker server)
  fovea submit -s kind=saliency -s method=spectral_residual -s input=photos.tar --wait
  fovea submit spec.json -s model.preset=squeezenet1_1-imagenet --wait
  fovea results JOB_ID --out results/
  fovea run -s kind=saliency -s method=spectral_residual -s input=photos.tar   # no service at all
  fovea submit -s kind=classifier_train -s input=builtin:shapes --wait          # train a model to explain
  fovea submit -s kind=saliency -s input='builtin:shapes?n=200' -s 'model={"job": "JOB_ID"}' --wait
  fovea submit -s kind=feature_visualization -s 'targets=[{"class": 425}, {"layer": "mixed4a", "channel": [97, 143]}]' --wait
  fovea submit -s kind=deepdream -s input=photos.tar -s preset=keras --wait     # inception5h preset, mixed4c
  fovea submit -s kind=inversion -s input=photos.tar -s 'layers=["conv2d0", "mixed3b", "mixed4c"]' --wait
  fovea submit -s kind=filters -s input=photos.tar -s 'layers=["conv2d0", "mixed4c"]' --wait
  fovea submit -s kind=captioning_train -s input=builtin:captioned_shapes --wait   # Show, Attend and Tell
  fovea submit -s kind=caption -s input=coco_val.tar -s 'model={"job": "JOB_ID"}' -s beam_size=5 --wait
  fovea submit -s kind=autoencoder_train -s input=builtin:mnist -s architecture=conv --wait   # the blog's conv AE
  fovea submit -s kind=autoencoder_train -s input=builtin:mnist -s architecture=deep -s code_size=2 --wait  # a 2-D code to plot
  fovea submit -s kind=autoencoder_train -s input=scans.tar -s architecture=conv -s denoising=true -s color=rgb -s input_size=64 --wait
  fovea submit -s kind=autoencoder_train -s input=builtin:mnist -s architecture=linear -s code_size=32 --wait  # against SVD
  fovea submit -s kind=autoencoder_apply -s input=photos.tar -s 'model={"job": "JOB_ID"}' --wait  # codes, errors, map

Exit codes: 0 the job succeeded with every item ok (or the command did what it says); 1 the job
failed or was canceled (or the API refused); 2 a spec or argument is wrong (each field and its problem is
printed, one a line, and nothing is uploaded or queued); 3 the job succeeded but some items failed.

Job kinds and all their fields: the README, or GET /docs on a running API.
"""

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_ITEMS_FAILED = 0, 1, 2, 3


def job_exit(job: dict[str, object]) -> int:
    """The exit code a finished job gives (see EPILOG)."""
    if job.get("status") != "succeeded":
        return EXIT_JOB_FAILED
    progress = job.get("progress")
    return EXIT_ITEMS_FAILED if isinstance(progress, dict) and progress.get("failed") else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fovea", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start the API and a worker together (the embedded default)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--workers", type=int, default=1, help="worker processes (one per GPU; more only on CPU)")

    api = sub.add_parser("api", help="start the HTTP API only")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)

    worker = sub.add_parser("worker", help="start a Celery worker (one process per GPU)")
    worker.add_argument("--concurrency", type=int, default=1)
    worker.add_argument(
        "--queues",
        default="items,control",
        help="what it takes: items (shards, training steps: the GPU work) and/or control (planning and "
        "finalising jobs: store and coordinator work, no model). Default both; a deployment with a control "
        "worker of its own gives its GPU workers 'items' only",
    )
    worker.add_argument(
        "--nice", type=int, default=0, help="lower its CPU priority by this much (e.g. 10 for a control worker)"
    )

    def spec_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("spec", nargs="?", help="job spec JSON file ('-' for stdin); see the README for fields")
        p.add_argument(
            "-s",
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="set a spec field (dotted keys, JSON values); input may be a local archive path",
        )

    submit = sub.add_parser("submit", help="submit a job (uploads a local input archive first)")
    spec_args(submit)
    submit.add_argument("--wait", action="store_true", help="wait with a progress bar until the job ends")
    submit.add_argument("--idempotency-key", help="retrying with the same key returns the same job")

    for name, text in (
        ("status", "show a job"),
        ("wait", "wait for a job with a progress bar"),
        ("cancel", "cancel a job (finished items are kept)"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("job_id")

    listing = sub.add_parser("list", help="list jobs")
    listing.add_argument("--status")
    listing.add_argument("--kind")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--order", choices=("newest", "oldest"), default="newest", help="newest first (default)")

    results = sub.add_parser(
        "results",
        help="download a job's report, manifest and outputs (packed outputs unpacked; a running job's finished items)",
    )
    results.add_argument("job_id")
    results.add_argument("--out", type=Path, default=None, help="folder (default: results-JOB_ID)")

    run = sub.add_parser("run", help="run one job in this process, no broker or API (local storage)")
    spec_args(run)

    sub.add_parser("init-storage", help="create the S3 bucket named by FOVEA_STORAGE_URL if it is missing")

    demo = sub.add_parser("demo", help="start the embedded stack and run a saliency job over sample photos")
    demo.add_argument("--out", type=Path, default=Path("fovea-data"), help="where the sample archive is written")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    try:
        return _dispatch(args, settings)
    except commands.UsageError as exc:
        for line in exc.lines:
            print(f"fovea: {line}", file=sys.stderr)
        return EXIT_USAGE
    except ApiFailure as exc:
        for line in exc.lines:
            print(f"fovea: {line}", file=sys.stderr)
        return EXIT_USAGE if exc.status == 422 else EXIT_JOB_FAILED


def _dispatch(args: argparse.Namespace, settings: object) -> int:
    from cli import stack

    if args.command == "up":
        return stack.run_stack(get_settings(), args.host, args.port, args.workers)
    if args.command == "api":
        stack.prepare_environment(get_settings())
        stack.run_api(args.host, args.port)
        return 0
    if args.command == "worker":
        stack.prepare_environment(get_settings())
        queues = tuple(name.strip() for name in args.queues.split(",") if name.strip())
        try:
            stack.worker_command(args.concurrency, queues=queues)
        except ValueError as exc:
            raise commands.UsageError([f"--queues: {exc}"]) from exc
        return stack.run_worker(get_settings(), args.concurrency, queues, args.nice)
    if args.command == "run":
        stack.prepare_environment(get_settings())
        spec = commands.checked_spec(commands.load_spec(args.spec, args.overrides))
        record = commands.run_inprocess(spec)
        commands.print_json({k: record[k] for k in ("id", "status", "progress", "error", "report")})
        return job_exit(record)
    if args.command == "init-storage":
        commands.init_storage()
        return 0
    if args.command == "demo":
        stack.prepare_environment(get_settings())
        return commands.demo(args.out)
    client = Client()
    if args.command == "submit":
        spec = commands.checked_spec(commands.load_spec(args.spec, args.overrides))  # before any upload
        job = client.submit(commands.resolve_input(client, spec), args.idempotency_key)
        if args.wait:
            job = client.wait(job["id"])
        commands.print_json(job)
        return job_exit(job) if args.wait else EXIT_OK
    if args.command == "status":
        commands.print_json(client.job(args.job_id))
    elif args.command == "wait":
        job = client.wait(args.job_id)
        commands.print_json(job)
        return job_exit(job)
    elif args.command == "cancel":
        commands.print_json(client.cancel(args.job_id))
    elif args.command == "list":
        commands.print_json(client.jobs(status=args.status, kind=args.kind, limit=args.limit, order=args.order))
    elif args.command == "results":
        out = client.download(args.job_id, args.out or Path(f"results-{args.job_id}"))
        print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
