"""The classifier's training loop: plain supervised training that can stop after a time budget and
resume exactly where it stopped, from tensors that fit in a safetensors checkpoint.

The data set stays resident (uint8, already at the input size) on the training device; each epoch's
order comes from a generator seeded with (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worker.nets.zoo import normalize
from worker.pipelines.checkpoint import load_module, load_optimizer, module_tensors, optimizer_tensors


@dataclass
class TrainData:
    train_x: torch.Tensor  # (N, 3, S, S) uint8
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    skipped: int = 0  # archive members that could not be used (unreadable, outside a class folder)


def to_tensor_images(images: Any, size: int, device: torch.device, chunk: int = 1024) -> torch.Tensor:
    """(N, H, W, 3) uint8 numpy -> (N, 3, size, size) uint8 tensor on ``device``."""
    out = []
    for start in range(0, len(images), chunk):
        batch = torch.from_numpy(images[start : start + chunk]).to(device).permute(0, 3, 1, 2).float()
        if batch.shape[2:] != (size, size):
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(batch.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        data: TrainData,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        weight_decay: float,
        preprocessing: str,
        seed: int,
    ) -> None:
        self.model = model
        self.data = data
        self.epochs = epochs
        self.batch_size = batch_size
        self.preprocessing = preprocessing
        self.seed = seed
        self.optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
        self.epoch = 0  # epochs finished
        self.batch_index = 0  # batches finished in the current epoch
        self.running = {"loss": 0.0, "correct": 0.0, "seen": 0.0}
        self.history: list[dict[str, float]] = []

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def _order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(len(self.data.train_y), generator=generator).to(self.data.train_y.device)

    def train_for(self, seconds: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Train until the time budget is spent, training is done, or ``should_stop`` says so
        (checked every few batches). Always stops on a batch boundary."""
        deadline = time.monotonic() + seconds
        self.model.train()
        while not self.done:
            order = self._order()
            batches = (len(order) + self.batch_size - 1) // self.batch_size
            while self.batch_index < batches:
                picked = order[self.batch_index * self.batch_size : (self.batch_index + 1) * self.batch_size]
                x = normalize(self.data.train_x[picked].float(), self.preprocessing)
                y = self.data.train_y[picked]
                logits = self.model(x)
                loss = F.cross_entropy(logits, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.running["loss"] += float(loss.detach()) * len(y)
                self.running["correct"] += float((logits.argmax(1) == y).sum())
                self.running["seen"] += len(y)
                self.batch_index += 1
                if time.monotonic() > deadline or (self.batch_index % 8 == 0 and should_stop()):
                    self.model.eval()
                    return
            self._end_epoch()
        self.model.eval()

    def _end_epoch(self) -> None:
        seen = max(self.running["seen"], 1.0)
        test_loss, test_accuracy = self.evaluate(self.data.test_x, self.data.test_y)
        self.history.append(
            {
                "epoch": self.epoch + 1,
                "train_loss": self.running["loss"] / seen,
                "train_accuracy": self.running["correct"] / seen,
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
            }
        )
        self.epoch += 1
        self.batch_index = 0
        self.running = {"loss": 0.0, "correct": 0.0, "seen": 0.0}
        self.model.train()

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 512) -> tuple[float, float]:
        was_training = self.model.training
        self.model.eval()
        loss, correct = 0.0, 0.0
        for start in range(0, len(y), chunk):
            logits = self.model(normalize(x[start : start + chunk].float(), self.preprocessing))
            target = y[start : start + chunk]
            loss += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += float((logits.argmax(1) == target).sum())
        self.model.train(was_training)
        return loss / max(len(y), 1), correct / max(len(y), 1)

    # --- checkpoints: tensors for safetensors, progress as JSON-able metadata -----------------

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {**module_tensors(self.model, "model"), **optimizer_tensors(self.optimizer, "optimizer")}
        progress = {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "running": self.running,
            "history": self.history,
        }
        return tensors, progress

    def load_state(self, tensors: dict[str, torch.Tensor], progress: dict[str, Any]) -> None:
        load_module(self.model, tensors, "model")
        load_optimizer(self.optimizer, tensors, "optimizer")
        self.epoch, self.batch_index = int(progress["epoch"]), int(progress["batch_index"])
        self.running = {k: float(v) for k, v in progress["running"].items()}
        self.history = list(progress["history"])
