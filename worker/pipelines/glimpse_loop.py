"""The glimpse network's training loop: the hybrid loss with Adam, a learning rate that falls when the
validation accuracy stops rising, early stopping on it (the model left is the best validation epoch's),
and Monte-Carlo averaging at evaluation. It stops after a time budget and resumes exactly where it
stopped: every batch's order, canvases and policy noise come from generators seeded by (seed, epoch,
batch), and the whole state (weights, optimiser, best weights, counters, history) is checkpointed.

The data stays in memory as uint8 and batches are taken by index; no DataLoader and no per-batch
synchronisation (the running sums stay on the device until the epoch ends)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from worker.inputs.mnist_tasks import seeded
from worker.nets.glimpse import RecurrentAttention, draws, hybrid_loss
from worker.pipelines.checkpoint import load_module, load_optimizer, module_tensors, optimizer_tensors
from worker.pipelines.glimpse_data import GlimpseData

_TRAIN_STREAM, _EVAL_STREAM = 11, 13
EVAL_CHUNK = 1000
RUNNING = ("loss", "action", "baseline", "reinforce", "reward")


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int
    learning_rate: float
    lr_schedule: str  # "plateau" or "constant"
    lr_patience: int
    lr_factor: float
    patience: int  # 0: never stop early
    reinforce_weight: float
    samples: int  # Monte-Carlo samples per test image
    seed: int


@dataclass
class Evaluation:
    accuracy: float
    probabilities: torch.Tensor  # (N, classes): averaged over the samples
    locations: torch.Tensor  # (N, T, 2): the first sample's glimpse locations


@torch.no_grad()
def predict(
    model: RecurrentAttention, images: torch.Tensor, samples: int, generators: list[torch.Generator]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities averaged over ``samples`` episodes, the first episode's locations) for float
    images (B, C, S, S). Image i draws all its episodes from ``generators[i]`` when one is given per image
    (nothing then depends on its batch neighbours), else every image from the one generator."""
    config, device = model.config, images.device
    if len(generators) == len(images) and len(images) > 1:
        pairs = [draws(config, samples, g, device) for g in generators]  # (samples, ...) per image
        start = torch.stack([p[0] for p in pairs], dim=1).flatten(0, 1)  # sample-major: (samples * B, 2)
        noise = torch.stack([p[1] for p in pairs], dim=1).flatten(0, 1)
    else:
        start, noise = draws(config, samples * len(images), generators[0], device)
    episode = model(images.repeat(samples, 1, 1, 1), start, noise)
    probabilities = episode.logits.softmax(dim=1).view(samples, len(images), -1).mean(dim=0)
    return probabilities, episode.locations[: len(images)]


class Trainer:
    def __init__(self, model: RecurrentAttention, data: GlimpseData, schedule: Schedule, device: torch.device) -> None:
        self.model, self.data, self.schedule, self.device = model, data, schedule, device
        fused = True if device.type == "cuda" else None
        self.optimizer = torch.optim.Adam(model.parameters(), lr=schedule.learning_rate, fused=fused)
        self.epoch = 0
        self.batch_index = 0
        self.learning_rate = schedule.learning_rate
        self.best_accuracy, self.best_epoch, self.stale, self.lr_stale = -1.0, 0, 0, 0
        self.stopped = False
        self.best: dict[str, torch.Tensor] = {}
        self.history: list[dict[str, float]] = []
        self._reset_running()

    def _reset_running(self) -> None:
        self.running = torch.zeros(len(RUNNING), dtype=torch.float64, device=self.device)
        self.seen = 0

    @property
    def done(self) -> bool:
        return self.stopped or self.epoch >= self.schedule.epochs

    @property
    def batches_per_epoch(self) -> int:
        return (len(self.data.train_y) + self.schedule.batch_size - 1) // self.schedule.batch_size

    def _order(self) -> torch.Tensor:
        generator = seeded(self.schedule.seed, _TRAIN_STREAM, self.epoch)
        return torch.randperm(len(self.data.train_y), generator=generator)

    def step(self, picked: torch.Tensor) -> None:
        schedule, data = self.schedule, self.data
        seed = schedule.seed
        images = data.train_batch(picked, seed, self.epoch, self.batch_index).to(self.device).float().div_(255.0)
        labels = data.train_y[picked].to(self.device)
        start, noise = draws(self.model.config, len(picked), seeded(seed, self.epoch, self.batch_index), self.device)
        losses = hybrid_loss(self.model(images, start, noise), labels, schedule.reinforce_weight)
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        self.optimizer.step()
        n = len(picked)
        parts = (losses.total.detach(), losses.action, losses.baseline, losses.reinforce, losses.reward.mean())
        self.running += torch.stack([p.double() for p in parts]) * n
        self.seen += n

    def train_for(self, seconds: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Train until the budget is spent, training is done, or ``should_stop`` (asked every 8 batches)."""
        deadline = time.monotonic() + seconds
        self.model.train()
        while not self.done:
            order = self._order()
            size = self.schedule.batch_size
            while self.batch_index < self.batches_per_epoch:
                self.step(order[self.batch_index * size : (self.batch_index + 1) * size])
                self.batch_index += 1
                if time.monotonic() > deadline or (self.batch_index % 8 == 0 and should_stop()):
                    self.model.eval()
                    return
            self._end_epoch()
        self.model.eval()

    def _end_epoch(self) -> None:
        sums, seen = self.running.tolist(), max(self.seen, 1)
        accuracy = self.evaluate(self.data.val_x, self.data.val_y, samples=1).accuracy
        row = {"epoch": self.epoch + 1, **{f"train_{k}": v / seen for k, v in zip(RUNNING, sums, strict=True)}}
        row.update({"validation_accuracy": accuracy, "learning_rate": self.learning_rate})
        self.history.append(row)
        self.epoch += 1
        self.batch_index = 0
        self._reset_running()
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch, self.stale, self.lr_stale = accuracy, self.epoch, 0, 0
            self.best = {k: v.detach().clone() for k, v in module_tensors(self.model, "model").items()}
        else:
            self.stale += 1
            self.lr_stale += 1
            if self.schedule.lr_schedule == "plateau" and self.lr_stale >= self.schedule.lr_patience:
                self.learning_rate *= self.schedule.lr_factor
                self.lr_stale = 0
            self.stopped = self.schedule.patience > 0 and self.stale >= self.schedule.patience
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
        self.model.train()

    def use_best(self) -> None:
        """Put back the weights of the best validation epoch: the model the job leaves."""
        if self.best:
            load_module(self.model, self.best, "model")

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, samples: int) -> Evaluation:
        """Accuracy with ``samples`` Monte-Carlo episodes per image, the probabilities averaged; seeded per
        chunk, so an evaluation repeats exactly."""
        was_training = self.model.training
        self.model.eval()
        probabilities, locations = [], []
        for number, begin in enumerate(range(0, len(images), EVAL_CHUNK)):
            chunk = images[begin : begin + EVAL_CHUNK].to(self.device).float().div_(255.0)
            generator = seeded(self.schedule.seed, _EVAL_STREAM, number)
            found, where = predict(self.model, chunk, samples, [generator])
            probabilities.append(found.cpu())
            locations.append(where.cpu())
        self.model.train(was_training)
        joined = torch.cat(probabilities) if probabilities else torch.zeros(0, len(self.data.classes))
        right = (joined.argmax(dim=1) == labels.cpu()).float()
        return Evaluation(
            float(right.mean()) if len(right) else 0.0,
            joined,
            torch.cat(locations) if locations else torch.zeros(0, self.model.config.glimpses, 2),
        )

    # --- checkpoints -----------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {**module_tensors(self.model, "model"), **optimizer_tensors(self.optimizer, "optimizer")}
        tensors.update({f"best.{name}": value.cpu().contiguous() for name, value in self.best.items()})
        progress = {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "running": self.running.tolist(),
            "seen": self.seen,
            "history": self.history,
            "learning_rate": self.learning_rate,
            "best_accuracy": self.best_accuracy,
            "best_epoch": self.best_epoch,
            "stale": self.stale,
            "lr_stale": self.lr_stale,
            "stopped": self.stopped,
        }
        return tensors, progress

    def load_state(self, tensors: dict[str, torch.Tensor], progress: dict[str, Any]) -> None:
        load_module(self.model, tensors, "model")
        load_optimizer(self.optimizer, tensors, "optimizer")
        self.best = {name[5:]: value.to(self.device) for name, value in tensors.items() if name.startswith("best.")}
        self.epoch, self.batch_index = int(progress["epoch"]), int(progress["batch_index"])
        self.running = torch.tensor(progress["running"], dtype=torch.float64, device=self.device)
        self.seen = int(progress["seen"])
        self.history = list(progress["history"])
        self.learning_rate = float(progress["learning_rate"])
        self.best_accuracy, self.best_epoch = float(progress["best_accuracy"]), int(progress["best_epoch"])
        self.stale, self.lr_stale = int(progress["stale"]), int(progress["lr_stale"])
        self.stopped = bool(progress["stopped"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
