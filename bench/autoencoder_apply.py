"""``autoencoder_apply`` throughput in images per second, against the script a user would write, in one run.

A model is trained first by a short ``autoencoder_train`` job on MNIST (timings only: its quality does not
matter), then an archive of ``--images`` MNIST test digits (PNG) goes through:

- Anchor: a plain script — read the tar, decode each PNG with PIL, forward passes in batches, one
  reconstruction PNG per image written to a folder, the codes saved as one ``.npy``.
- Fovea: the ``autoencoder_apply`` job in this process on local storage: planning (the archive read and
  repacked into shards), decoding on a reader thread, batches, the input and reconstruction PNGs per
  image (then without the input's copy, ``write_inputs`` false), the shard manifests, and the
  finaliser's codes array, ranking, map, anomaly sheet and report.
- Compute only: the model's forward pass over the same images already in memory, for scale.

One JSON line per figure, with the ratio to the anchor.

    FOVEA_ASSETS_DIR=../shared/data .venv/bin/python bench/autoencoder_apply.py --arch dense --images 5000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import keys  # noqa: E402
from shared.kinds import parse_spec  # noqa: E402
from shared.settings import Settings  # noqa: E402
from worker.engine.inprocess import run_job_inprocess  # noqa: E402
from worker.inputs.mnist import load_mnist  # noqa: E402
from worker.runtime.resources import Resources  # noqa: E402


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def job(rt: Resources, settings: Settings, spec: dict[str, Any]) -> tuple[str, float]:
    parsed = parse_spec(spec)
    job_id = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None).id
    start = time.perf_counter()
    run_job_inprocess(settings, "local", job_id)
    seconds = time.perf_counter() - start
    record = rt.services.jobs.get("local", job_id)
    if record.status.value != "succeeded":
        raise SystemExit(f"{spec['kind']} job {record.status.value}: {record.error}")
    return job_id, seconds


def anchor(archive: bytes, model: torch.nn.Module, out: Path, batch: int) -> float:
    """The script a user writes: PIL decode, batched forward passes, a PNG per reconstruction."""
    start = time.perf_counter()
    names, images, codes = [], [], []

    def flush() -> None:
        x = torch.from_numpy(np.stack(images)).float().div(255.0)[:, None]
        with torch.no_grad():
            code = model.encode(x)  # type: ignore[operator]
            made = model.reconstruct(code)  # type: ignore[operator]
        codes.append(code.numpy())
        for name, picture in zip(names, made, strict=True):
            pixels = (picture[0].numpy() * 255 + 0.5).astype(np.uint8)
            Image.fromarray(pixels).save(out / name.replace("/", "_"))
        names.clear()
        images.clear()

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            handle = tar.extractfile(member)
            if handle is None:
                continue
            names.append(member.name)
            images.append(np.asarray(Image.open(io.BytesIO(handle.read())).convert("L")))
            if len(images) == batch:
                flush()
    if images:
        flush()
    np.save(out / "codes.npy", np.concatenate(codes))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="dense", choices=["dense", "deep", "conv"])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    assets = Path(os.environ.get("FOVEA_ASSETS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder) / "data", assets_dir=assets)
        rt = Resources.create(settings, lambda _name, _args: None)
        train = {"kind": "autoencoder_train", "input": "builtin:mnist", "architecture": args.arch,
                 "train_items": 2000, "test_items": 200, "epochs": 1}  # fmt: skip
        train_id, _ = job(rt, settings, train)
        digits, labels = load_mnist(assets, Path(folder) / "mnist", False)
        count = min(args.images, len(digits))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for i in range(count):
                data = png(digits[i])
                info = tarfile.TarInfo(f"{labels[i]}/{i:05d}.png")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        archive = buffer.getvalue()
        model = rt.models.trained(train_id, "local", torch.device("cpu"), "autoencoder").module
        out = Path(folder) / "anchor"
        out.mkdir()
        where = {"arch": args.arch, "images": count, "threads": torch.get_num_threads(), "device": "cpu"}
        seconds = anchor(archive, model, out, args.batch_size)
        emit(figure="apply: plain script (anchor)", images_per_second=round(count / seconds, 1), **where)
        rt.services.storage.put_bytes(keys.upload("local", "bench", "digits.tar"), archive)
        spec = {"kind": "autoencoder_apply", "input": "upload://bench", "model": {"job": train_id},
                "batch_size": args.batch_size}  # fmt: skip
        _, fovea = job(rt, settings, spec)
        emit(figure="apply: Fovea job end to end", images_per_second=round(count / fovea, 1),
             ratio=round(seconds / fovea, 2), **where)  # fmt: skip
        _, lean = job(rt, settings, {**spec, "write_inputs": False})
        emit(figure="apply: Fovea job, write_inputs false", images_per_second=round(count / lean, 1),
             ratio=round(seconds / lean, 2), **where)  # fmt: skip
        x = torch.from_numpy(digits[:count, None].copy()).float().div(255.0)
        start = time.perf_counter()
        with torch.no_grad():
            for first in range(0, count, args.batch_size):
                model.reconstruct(model.encode(x[first : first + args.batch_size]))  # type: ignore[operator]
        compute = time.perf_counter() - start
        emit(figure="apply: forward passes only", images_per_second=round(count / compute, 1), **where)


if __name__ == "__main__":
    main()
