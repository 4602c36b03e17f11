"""The Keras blog's autoencoders on the real MNIST, trained as ``autoencoder_train`` jobs (in-process, local
storage, the job's own code path), at the blog's epochs and batch sizes: the quality figures of the README.

Each run prints one JSON line: the architecture and options, epochs, test loss against the clean image
(binary cross-entropy; squared error for ``linear``), mean |code|, and what the variant is measured by
(the noisy input's own BCE for denoising, the principal angles for linear), with the wall time and the
machine. Long on a CPU (the conv runs take the better part of an hour each on two cores): run it in the
background.

    FOVEA_ASSETS_DIR=../shared/data .venv/bin/python bench/autoencoder_quality.py dense deep conv sparse linear
    .venv/bin/python bench/autoencoder_quality.py denoising --epochs 20     # fewer epochs than the recipe
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import keys  # noqa: E402
from shared.kinds import parse_spec  # noqa: E402
from shared.settings import Settings  # noqa: E402
from worker.engine.inprocess import run_job_inprocess  # noqa: E402
from worker.runtime.resources import Resources  # noqa: E402

RECIPES: dict[str, dict[str, Any]] = {
    "dense": {"architecture": "dense", "epochs": 50},  # blog: about 0.09 (goal <= 0.100)
    "deep": {"architecture": "deep", "epochs": 100},  # blog: about 0.08 (goal <= 0.090)
    "conv": {"architecture": "conv", "epochs": 50},  # blog: 0.094
    "sparse": {"architecture": "sparse", "epochs": 100},  # blog: train 0.11, test 0.10; mean code 3.33 vs 7.30
    "linear": {"architecture": "linear", "code_size": 32, "epochs": 50},  # angles to the top-32 SVD subspace
    "tied": {"architecture": "tied", "epochs": 50},  # against dense: half the weights, comparable loss
    "denoising": {"architecture": "conv", "conv_channels": [32, 32], "denoising": True, "epochs": 100},
    "denoising-dense": {"architecture": "dense", "denoising": True, "epochs": 50},
    "multimodal": {"architecture": "multimodal", "attributes": "class", "epochs": 50},
}

FIGURES = (
    "test_loss", "train_loss", "test_mean_abs_code", "noisy_input_loss", "parameters", "weights",
    "test_attribute_accuracy", "train_items", "test_items",
)  # fmt: skip


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"{cpu or platform.processor()}, {torch.get_num_threads()} torch threads"


def run(name: str, epochs: int | None, step_seconds: float) -> dict[str, Any]:
    spec = {"kind": "autoencoder_train", "input": "builtin:mnist", "step_seconds": step_seconds, **RECIPES[name]}
    if epochs is not None:
        spec["epochs"] = epochs
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            data_dir=Path(folder), assets_dir=Path(os.environ.get("FOVEA_ASSETS_DIR", "../shared/data"))
        )
        rt = Resources.create(settings, lambda _name, _args: None)
        parsed = parse_spec(spec)
        record = rt.services.jobs.create("local", parsed.kind, parsed.model_dump(mode="json"), None)
        started = time.perf_counter()
        run_job_inprocess(settings, "local", record.id)
        seconds = time.perf_counter() - started
        final = rt.services.jobs.get("local", record.id)
        if final.status.value != "succeeded":
            return {"run": name, "status": final.status.value, "error": final.error}
        summary = rt.services.storage.get_json(keys.summary("local", record.id))
    out = {"run": name, "spec": RECIPES[name] | ({"epochs": epochs} if epochs else {}), "epochs": summary["epochs"]}
    out |= {key: summary[key] for key in FIGURES if summary.get(key) is not None}
    if summary.get("principal_angles"):
        angles = summary["principal_angles"]
        out["max_principal_angle_deg"] = angles["max_angle_deg"]
    out |= {"seconds": round(seconds, 1), "machine": machine()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--step-seconds", type=float, default=600.0, help="training time per checkpointed step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.runs:
        print(json.dumps(run(name, args.epochs, args.step_seconds)), flush=True)


if __name__ == "__main__":
    main()
