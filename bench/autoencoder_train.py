"""Autoencoder training time per epoch on the real MNIST, Fovea's loop against the loop a user writes, in
one run, for the Keras blog's dense, deep and conv models (same model, same batch size, same epochs).

- Anchor: the usual tutorial loop — ``torchvision.datasets.MNIST`` with ``ToTensor()``, a shuffling
  ``DataLoader``, one ``.to(device)`` per batch, ``nn.BCELoss`` on the sigmoid output, Adam, ``loss.item()``
  every batch, and a pass over the test loader after each epoch (as PyTorch's MNIST example does).
- Fovea: ``worker.pipelines.autoencoder_loop.Trainer``, the loop the ``autoencoder_train`` job runs: the
  data set resident on the device as uint8, batches by index, BCE from logits, the running loss summed
  on the device (no per-batch synchronisation), and its own test evaluation after each epoch.
- Where CUDA is present it also times the same loop with the model under ``torch.compile`` (``--compile``
  does that on a CPU too), which is where fusing the small kernels of these models should pay; several
  batches per launch and CUDA graphs are not tried by this script.

One JSON line per figure: seconds per epoch (the median of ``--epochs`` epochs after one warm-up epoch),
the ratio anchor / Fovea, the machine and the threads.

    FOVEA_ASSETS_DIR=../shared/data .venv/bin/python bench/autoencoder_train.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.inputs.mnist import load_mnist, prepare  # noqa: E402
from worker.nets.autoencoders import Autoencoder, ConvAutoencoder, DenseAutoencoder  # noqa: E402
from worker.pipelines.autoencoder_loop import LoopData, LossSettings, Trainer  # noqa: E402

MODELS = {
    "dense": (lambda: DenseAutoencoder(1, 28, 32), 256),
    "deep": (lambda: DenseAutoencoder(1, 28, 32, [128, 64]), 256),
    "conv": (lambda: ConvAutoencoder(1, 28), 128),
}


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "CPU")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Tutorial:
    """The loop as the tutorials write it."""

    def __init__(self, model: Autoencoder, root: Path, batch_size: int, device: torch.device) -> None:
        from torchvision import datasets, transforms

        self.model, self.device = model.to(device), device
        to_tensor = transforms.ToTensor()
        self.train = torch.utils.data.DataLoader(
            datasets.MNIST(str(root), train=True, download=False, transform=to_tensor),
            batch_size=batch_size,
            shuffle=True,
        )
        self.test = torch.utils.data.DataLoader(
            datasets.MNIST(str(root), train=False, download=False, transform=to_tensor), batch_size=batch_size
        )
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.criterion = nn.BCELoss()

    def epoch(self) -> float:
        self.model.train()
        total = 0.0
        for images, _labels in self.train:
            images = images.to(self.device)
            outputs = self.model.reconstruct(self.model.encode(images))
            loss = self.criterion(outputs, images)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        self.model.eval()
        with torch.no_grad():
            for images, _labels in self.test:
                images = images.to(self.device)
                total += self.criterion(self.model.reconstruct(self.model.encode(images)), images).item()
        return total


def timed(run_epoch: Any, epochs: int, device: torch.device) -> float:
    """Median seconds per epoch after one warm-up epoch (allocator, kernels, compilation)."""
    run_epoch()
    times = []
    for _ in range(epochs):
        sync(device)
        start = time.perf_counter()
        run_epoch()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fovea_epoch(model: nn.Module, data: LoopData, batch_size: int) -> Any:
    trainer = Trainer(model, data, LossSettings(), epochs=10**6, batch_size=batch_size, learning_rate=1e-3, seed=0)  # type: ignore[arg-type]

    def one() -> None:
        trainer.epochs = trainer.epoch + 1
        trainer.train_for(1e9)

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per figure (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time the loop under torch.compile on a CPU")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assets = Path(os.environ.get("FOVEA_ASSETS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    cache = Path(tempfile.gettempdir()) / "fovea-bench-mnist"
    root = prepare(assets, cache)
    train_x, _ = load_mnist(assets, cache, True)
    test_x, _ = load_mnist(assets, cache, False)
    data = LoopData(
        torch.from_numpy(train_x[:, None].copy()).to(device), torch.from_numpy(test_x[:, None].copy()).to(device)
    )
    where = {"device": device.type, "machine": machine(device), "threads": torch.get_num_threads()}
    for name in args.models:
        build, batch_size = MODELS[name]
        torch.manual_seed(0)
        anchor = timed(Tutorial(build(), root, batch_size, device).epoch, args.epochs, device)
        emit(
            figure=f"{name}: DataLoader loop (anchor)",
            seconds_per_epoch=round(anchor, 3),
            batch_size=batch_size,
            **where,
        )
        torch.manual_seed(0)
        fovea = timed(fovea_epoch(build().to(device), data, batch_size), args.epochs, device)
        emit(figure=f"{name}: Fovea loop", seconds_per_epoch=round(fovea, 3), ratio=round(anchor / fovea, 2), **where)
        if device.type == "cuda" or args.compile:
            torch.manual_seed(0)
            compiled = torch.compile(build().to(device))
            seconds = timed(fovea_epoch(compiled, data, batch_size), args.epochs, device)
            emit(figure=f"{name}: Fovea loop, torch.compile", seconds_per_epoch=round(seconds, 3),
                 ratio=round(anchor / seconds, 2), **where)  # fmt: skip


if __name__ == "__main__":
    main()
