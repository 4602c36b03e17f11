"""Implementations of the ``fovea`` sub-commands (argument parsing lives in cli.main)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cli.client import Client
from cli.samples import sample_archive
from shared import keys
from shared.settings import get_settings

URI_SCHEMES = ("upload://", "s3://", "builtin:")
"""Inputs the service reads itself; anything else given as input is a local file to upload."""

_PENDING_UPLOAD = "upload://pending"


class UsageError(Exception):
    """What is wrong with the command line or the spec, one line each (exit code 2)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def checked_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as given, once it validates as the API would validate it (a local input file must exist
    and stands for its future upload), so that nothing is uploaded for a spec that would be refused."""
    from pydantic import ValidationError

    from shared.kinds import parse_spec
    from shared.validation import field_errors

    value = spec.get("input")
    local = isinstance(value, str) and not value.startswith(URI_SCHEMES)
    if local and not Path(str(value)).is_file():
        raise UsageError([f"input: no such file: {value} (give a local archive, upload://ID, s3://... or builtin:...)"])
    try:
        parse_spec({**spec, "input": _PENDING_UPLOAD} if local else spec)
    except ValidationError as exc:
        raise UsageError([f"{e['field']}: {e['message']}" for e in field_errors(exc.errors())]) from None
    return spec


def load_spec(source: str | None, overrides: list[str]) -> dict[str, Any]:
    """A spec from a JSON file ('-' for stdin, nothing for {}), then KEY=VALUE overrides (dotted keys,
    JSON values: -s model.preset=squeezenet1_1-imagenet -s top_k=3)."""
    spec: dict[str, Any] = {}
    try:
        if source == "-":
            spec = json.load(sys.stdin)
        elif source:
            spec = json.loads(Path(source).read_text())
    except FileNotFoundError:
        raise UsageError([f"spec file {source} not found"]) from None
    except json.JSONDecodeError as exc:
        raise UsageError([f"spec file {source}: not JSON ({exc})"]) from None
    if not isinstance(spec, dict):
        raise UsageError([f"spec file {source}: a JSON object is needed"])
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise UsageError([f"-s {override!r}: give KEY=VALUE"])
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = spec
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return spec


def resolve_input(client: Client, spec: dict[str, Any]) -> dict[str, Any]:
    """A local archive path as input is uploaded first and replaced by its upload:// URI."""
    value = spec.get("input")
    if isinstance(value, str) and not value.startswith(URI_SCHEMES):
        spec = {**spec, "input": client.upload(Path(value))}
    return spec


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def run_inprocess(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one job in this process on the local embedded store; returns the finished job record."""
    from tqdm import tqdm

    from shared.jobs import new_id
    from shared.kinds import parse_spec
    from worker.engine.inprocess import run_job_inprocess
    from worker.runtime.services import Services

    settings = get_settings()
    services = Services.from_settings(settings, lambda name, args: None)
    tenant = "local"
    value = spec.get("input")
    if isinstance(value, str) and not value.startswith(URI_SCHEMES):
        path = Path(value)
        upload_id = new_id("u_")
        with path.open("rb") as handle:
            services.storage.put_stream(keys.upload(tenant, upload_id, path.name), handle)
        spec = {**spec, "input": f"upload://{upload_id}"}
    parsed = parse_spec(spec)
    record = services.jobs.create(tenant, parsed.kind, parsed.model_dump(mode="json"), parsed.name)
    bar = tqdm(total=None, unit="img", desc=record.id)

    def show(svc: Services) -> None:
        live = svc.coordinator.progress(record.id)
        if live is not None:
            bar.total = live.total
            bar.n = live.done + live.failed
            bar.refresh()

    run_job_inprocess(settings, tenant, record.id, on_task=show)
    bar.close()
    final = services.jobs.get(tenant, record.id)
    return {**final.model_dump(mode="json"), "report": str(_local_path(settings, keys.report(tenant, record.id)))}


def _local_path(settings: Any, key: str) -> Path:
    return Path(settings.resolved_storage_url().removeprefix("file://")) / key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo(out_dir: Path) -> int:
    """Start the embedded stack, submit a saliency job over the sample photos, wait, print the report."""
    settings = get_settings()
    archive = sample_archive(out_dir / "samples.tar")
    port = free_port()
    stack = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--port", str(port)])
    client = Client(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(client, stack)
        weights = settings.assets_dir and (Path(settings.assets_dir) / "weights" / "squeezenet1_1-imagenet.safetensors")
        if weights and weights.is_file():
            spec: dict[str, Any] = {
                "kind": "saliency",
                "method": "gradient",
                "model": {"preset": "squeezenet1_1-imagenet"},
            }
            print("demo: gradient saliency with ImageNet-trained SqueezeNet 1.1 over the sample photos")
        else:
            spec = {"kind": "saliency", "method": "spectral_residual"}
            print(
                "demo: spectral-residual saliency over the sample photos "
                "(set FOVEA_ASSETS_DIR to a folder with weights/ for the gradient demo)"
            )
        spec["name"] = "Fovea demo: saliency of scikit-image's sample photos"
        spec["input"] = client.upload(archive)
        job = client.submit(spec)
        job = client.wait(job["id"])
        p = job["progress"]
        print(f"demo: job {job['id']} {job['status']}: {p['done']} ok, {p['failed']} failed of {p['total']}")
        report = _local_path(settings, keys.report("local", job["id"]))
        print(f"demo: HTML report: {report}")
        return 0 if job["status"] == "succeeded" else 1
    finally:
        stack.terminate()
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stack.kill()


def _wait_ready(client: Client, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("fovea up exited before it was ready")
        try:
            if client.http.get("/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("fovea up did not become ready in time")


def init_storage() -> None:
    """Create the bucket of an S3 store (idempotent); a local store needs nothing."""
    from shared.storage import open_storage
    from shared.storage.s3 import S3Storage

    storage = open_storage(get_settings())
    if isinstance(storage, S3Storage):
        storage.ensure_bucket()
        print(f"bucket {storage.bucket} ready")
    else:
        print("local storage: nothing to create")
