"""The autoencoders' training loop: reconstruction (binary cross-entropy from logits, or squared error),
an optional L1 penalty on the code (sparse), noise on the input only (denoising), and an attribute loss
(multimodal), trained with Adam; it stops after a time budget and resumes exactly where it stopped.

The data set stays resident on the training device as uint8 and batches are taken by index: no
DataLoader, no per-batch host transfer and no per-batch synchronisation (the running loss is summed on
the device). Each epoch's order comes from a generator seeded with (seed, epoch), and each batch's noise
from one seeded with (seed, epoch, batch), so a resumed run sees the same batches and the same noise."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from worker.nets.autoencoders import Autoencoder
from worker.pipelines.checkpoint import load_module, load_optimizer, module_tensors, optimizer_tensors

KERAS_ADAM_EPSILON = 1e-7  # Keras' default; PyTorch's is 1e-8
_TEST_NOISE_STREAM = 7_919  # keeps the test set's noise apart from every training batch's
NOISE_BLOCK = 512


@dataclass
class LoopData:
    train_x: torch.Tensor  # (N, C, S, S) uint8, on the training device
    test_x: torch.Tensor
    train_a: torch.Tensor | None = None  # (N, A) float32: what the attribute encoder takes
    test_a: torch.Tensor | None = None
    train_y: torch.Tensor | None = None  # (N,) int64: class targets of a class-attribute model
    test_y: torch.Tensor | None = None


@dataclass(frozen=True)
class LossSettings:
    loss: str = "bce"  # or "mse"
    l1_weight: float = 0.0
    noise_factor: float | None = None  # denoising: noise std before clipping to [0, 1]
    attribute_loss: str | None = None  # "class" (cross-entropy) or "numbers" (squared error)
    attribute_weight: float = 1.0


def seeded(device: torch.device, *parts: int) -> torch.Generator:
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + part) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(seed)


def add_noise(clean: torch.Tensor, factor: float, generator: torch.Generator) -> torch.Tensor:
    """The blog's corruption: x + factor * N(0, 1), clipped to [0, 1]."""
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return (clean + factor * noise).clamp_(0.0, 1.0)


def image_loss(model: Autoencoder, logits: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(model.activate(logits), target)


@dataclass
class Evaluation:
    loss: float
    attribute_loss: float | None
    mean_abs_code: float


class Trainer:
    def __init__(
        self,
        model: Autoencoder,
        data: LoopData,
        losses: LossSettings,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        seed: int,
        schedule: str = "constant",
    ) -> None:
        self.model, self.data, self.losses = model, data, losses
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.learning_rate, self.schedule = learning_rate, schedule
        self.device = data.train_x.device
        # On CUDA the fused Adam updates every parameter in one kernel: these models are small enough for
        # launch overhead to matter. (The CPU keeps the default implementation.)
        fused = True if self.device.type == "cuda" else None
        self.optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, eps=KERAS_ADAM_EPSILON, fused=fused)
        self.epoch = 0  # epochs finished
        self.batch_index = 0  # batches finished in the current epoch
        self._reset_running()
        self.history: list[dict[str, float]] = []

    def _reset_running(self) -> None:
        self.running = torch.zeros(2, dtype=torch.float64, device=self.device)  # image, attribute loss sums
        self.seen = 0

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def _order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(len(self.data.train_x), generator=generator).to(self.device)

    @property
    def batches_per_epoch(self) -> int:
        return (len(self.data.train_x) + self.batch_size - 1) // self.batch_size

    def _set_learning_rate(self) -> None:
        """Constant, or cosine decay to zero over the whole run: a function of the position in training
        only, so a resumed run sets the same rate. The decay takes out the minibatch noise that otherwise
        holds a linear AE's subspace a few degrees off the SVD's."""
        rate = self.learning_rate
        if self.schedule == "cosine":
            done = (self.epoch * self.batches_per_epoch + self.batch_index) / (self.epochs * self.batches_per_epoch)
            rate *= 0.5 * (1.0 + math.cos(math.pi * done))
        for group in self.optimizer.param_groups:
            group["lr"] = rate

    def step(self, picked: torch.Tensor) -> None:
        """One optimiser step on the training images at ``picked``."""
        data, losses = self.data, self.losses
        self._set_learning_rate()
        clean = data.train_x[picked].float().div_(255.0)
        inputs = clean
        if losses.noise_factor is not None:
            noise = seeded(self.device, self.seed, self.epoch, self.batch_index)
            inputs = add_noise(clean, losses.noise_factor, noise)
        attributes = data.train_a[picked] if data.train_a is not None else None
        code, logits, attribute_out = self.model(inputs, attributes)
        reconstruction = image_loss(self.model, logits, clean, losses.loss)
        total = reconstruction
        if losses.l1_weight:
            total = total + losses.l1_weight * code.abs().sum(dim=1).mean()  # Keras' activity L1, per image
        attribute = self._attribute_loss(attribute_out, picked, train=True)
        if attribute is not None:
            total = total + losses.attribute_weight * attribute
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        n = len(picked)
        self.running[0] += reconstruction.detach().double() * n
        if attribute is not None:
            self.running[1] += attribute.detach().double() * n
        self.seen += n

    def _attribute_loss(self, out: torch.Tensor | None, picked: torch.Tensor, *, train: bool) -> torch.Tensor | None:
        if out is None or self.losses.attribute_loss is None:
            return None
        if self.losses.attribute_loss == "class":
            targets = self.data.train_y if train else self.data.test_y
            if targets is None:
                raise ValueError("a class-attribute model needs class targets")
            return F.cross_entropy(out, targets[picked])
        wanted = self.data.train_a if train else self.data.test_a
        if wanted is None:
            raise ValueError("a multimodal model needs attributes")
        return F.mse_loss(out, wanted[picked])

    def train_for(self, seconds: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Train until the time budget is spent, training is done, or ``should_stop`` says so (checked every
        8 batches). Always stops on a batch boundary."""
        deadline = time.monotonic() + seconds
        self.model.train()
        while not self.done:
            order = self._order()
            batches = self.batches_per_epoch
            while self.batch_index < batches:
                self.step(order[self.batch_index * self.batch_size : (self.batch_index + 1) * self.batch_size])
                self.batch_index += 1
                if time.monotonic() > deadline or (self.batch_index % 8 == 0 and should_stop()):
                    self.model.eval()
                    return
            self._end_epoch()
        self.model.eval()

    def _end_epoch(self) -> None:
        sums = self.running.tolist()
        seen = max(self.seen, 1)
        test = self.evaluate()
        row = {"epoch": self.epoch + 1, "train_loss": sums[0] / seen, "test_loss": test.loss}
        if test.attribute_loss is not None:
            row["train_attribute_loss"] = sums[1] / seen
            row["test_attribute_loss"] = test.attribute_loss
        row["test_mean_abs_code"] = test.mean_abs_code
        self.history.append(row)
        self.epoch += 1
        self.batch_index = 0
        self._reset_running()
        self.model.train()

    def test_inputs(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(model input, clean target) for test images [start, stop). A denoising model's test noise is
        fixed by the seed and the image's position, whatever range is asked for: it is drawn per block of
        ``NOISE_BLOCK`` images from a generator seeded with the block's number."""
        clean = self.data.test_x[start:stop].float().div_(255.0)
        factor = self.losses.noise_factor
        if factor is None or not len(clean):
            return clean, clean
        pieces = []
        for block in range(start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK + 1):
            first = block * NOISE_BLOCK
            rows = min(first + NOISE_BLOCK, len(self.data.test_x)) - first
            generator = seeded(self.device, self.seed, _TEST_NOISE_STREAM, block)
            noise = torch.randn((rows, *clean.shape[1:]), generator=generator, device=self.device)
            pieces.append(noise[max(start, first) - first : min(stop, first + rows) - first])
        return (clean + factor * torch.cat(pieces)).clamp_(0.0, 1.0), clean

    def test_chunks(
        self, chunk: int = NOISE_BLOCK
    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """(start, input, clean target, attributes) over the test set."""
        for start in range(0, len(self.data.test_x), chunk):
            stop = min(start + chunk, len(self.data.test_x))
            inputs, clean = self.test_inputs(start, stop)
            attributes = self.data.test_a[start:stop] if self.data.test_a is not None else None
            yield start, inputs, clean, attributes

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        """Test loss against the clean images, attribute loss, and mean |code| (the sparse model's figure)."""
        was_training = self.model.training
        self.model.eval()
        loss, attribute, magnitude, count = 0.0, 0.0, 0.0, 0
        for start, inputs, clean, attributes in self.test_chunks():
            code, logits, attribute_out = self.model(inputs, attributes)
            n = len(inputs)
            loss += float(image_loss(self.model, logits, clean, self.losses.loss)) * n
            picked = torch.arange(start, start + n, device=self.device)
            found = self._attribute_loss(attribute_out, picked, train=False)
            attribute += float(found) * n if found is not None else 0.0
            magnitude += float(code.abs().mean()) * n
            count += n
        self.model.train(was_training)
        count = max(count, 1)
        has_attributes = self.losses.attribute_loss is not None
        return Evaluation(loss / count, attribute / count if has_attributes else None, magnitude / count)

    # --- checkpoints: tensors for safetensors, progress as JSON-able metadata -----------------

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {**module_tensors(self.model, "model"), **optimizer_tensors(self.optimizer, "optimizer")}
        progress = {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "running": self.running.tolist(),
            "seen": self.seen,
            "history": self.history,
        }
        return tensors, progress

    def load_state(self, tensors: dict[str, torch.Tensor], progress: dict[str, Any]) -> None:
        load_module(self.model, tensors, "model")
        load_optimizer(self.optimizer, tensors, "optimizer")
        self.epoch, self.batch_index = int(progress["epoch"]), int(progress["batch_index"])
        self.running = torch.tensor(progress["running"], dtype=torch.float64, device=self.device)
        self.seen = int(progress["seen"])
        self.history = list(progress["history"])
