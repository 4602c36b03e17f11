"""The captioner's training loop: teacher forcing with the doubly stochastic penalty (soft attention) or
REINFORCE over sampled locations (hard), Adam, gradients clipped by value, validation BLEU-4 after every
epoch with early stopping, and exact resumption from tensors that fit a safetensors checkpoint.

Randomness is explicit: each batch's dropout masks and sampled locations come from a generator seeded
with (seed, epoch, batch), and each epoch's order from one seeded with (seed, epoch), so a run resumed
from a checkpoint sees exactly what the uninterrupted run saw."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from shared.specs.captioning import CaptioningTrainSpec
from worker.nets.attention import attention_entropy, doubly_stochastic_penalty
from worker.nets.caption_decoder import AttentionDecoder
from worker.nets.caption_search import Decoded, beam_search, greedy
from worker.nets.grid_encoder import GridEncoder
from worker.pipelines.caption_metrics import bleu4
from worker.pipelines.captioning_data import Prepared
from worker.pipelines.checkpoint import load_module, load_optimizer, module_tensors, optimizer_tensors

DECODE_CHUNK = 256
"""Images per decoding batch during evaluation."""


def sharpness_weight(spec: CaptioningTrainSpec, epoch: int) -> float:
    """The sharpness penalty's weight in epoch ``epoch`` (0-based): 0 for the first ``sharpness_start``
    epochs, then growing linearly to ``sharpness`` over ``sharpness_ramp`` epochs (the first epoch with it
    gets 1/ramp of it)."""
    grown = (epoch - spec.sharpness_start + 1) / spec.sharpness_ramp
    return spec.sharpness * min(max(grown, 0.0), 1.0)


class CaptionTrainer:
    def __init__(
        self, spec: CaptioningTrainSpec, data: Prepared, encoder: GridEncoder, decoder: AttentionDecoder
    ) -> None:
        self.spec, self.data = spec, data
        self.encoder, self.decoder = encoder, decoder
        self.device = data.captions.device
        self.hard = spec.attention == "hard"
        self.optimizer = torch.optim.Adam(decoder.parameters(), lr=spec.learning_rate)
        self.encoder_optimizer = (
            torch.optim.Adam(encoder.parameters(), lr=spec.encoder_learning_rate) if spec.fine_tune else None
        )
        self.epoch = 0  # epochs finished
        self.batch_index = 0  # batches finished in the current epoch
        self.running = {"loss": 0.0, "cross_entropy": 0.0, "penalty": 0.0, "attention_entropy": 0.0, "batches": 0.0}
        self.history: list[dict[str, float]] = []
        self.best_bleu4 = -1.0
        self.best_epoch = 0
        self.stale = 0  # epochs since the best validation BLEU-4
        self.stopped = False  # early stopping ended training
        self.baseline: float | None = None  # hard attention: moving average of log p(y | sampled locations)
        self.best: dict[str, torch.Tensor] = {}

    @property
    def done(self) -> bool:
        return self.stopped or self.epoch >= self.spec.epochs

    def _generator(self, *parts: int) -> torch.Generator:
        seed = self.spec.seed
        for part in parts:
            seed = seed * 1_000_003 + part
        return torch.Generator(device=self.device).manual_seed(seed % (2**63))

    def _order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.spec.seed * 100_003 + self.epoch)
        return torch.randperm(len(self.data.captions), generator=generator).to(self.device)

    def train_for(self, seconds: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Train until the budget is spent, training is done, or ``should_stop`` (asked every 8 batches);
        always stops on a batch boundary."""
        deadline = time.monotonic() + seconds
        while not self.done:
            order = self._order()
            batches = (len(order) + self.spec.batch_size - 1) // self.spec.batch_size
            while self.batch_index < batches:
                size = self.spec.batch_size
                picked = order[self.batch_index * size : (self.batch_index + 1) * size]
                self._batch(picked, self._generator(self.epoch, self.batch_index))
                self.batch_index += 1
                if time.monotonic() > deadline or (self.batch_index % 8 == 0 and should_stop()):
                    return
            self._end_epoch()

    def _batch(self, picked: torch.Tensor, generator: torch.Generator) -> None:
        spec = self.spec
        self.decoder.train()
        # The encoder stays in eval mode even when fine-tuned: its weights learn, but its batch-norm keeps
        # the statistics it came with (a caption batch's would drift them) and a training step behaves the
        # same whether it follows an epoch's validation pass or a resume from a checkpoint.
        self.encoder.eval()
        captions = self.data.captions[picked]
        length = int((captions != 0).sum(dim=1).max())
        captions = captions[:, :length]
        inputs, targets = captions[:, :-1], captions[:, 1:]
        mask = targets != 0
        features = self.data.annotations(self.data.caption_image[picked], self.encoder, spec.encoder.preprocessing)
        out = self.decoder(features, inputs, hard=self.hard, generator=generator)
        token_loss = F.cross_entropy(out.logits.transpose(1, 2), targets, reduction="none") * mask
        tokens = mask.sum().clamp_min(1)
        cross_entropy = token_loss.sum() / tokens
        # Normalised as the widely used PyTorch tutorial does: cross-entropy per word, plus lambda times the
        # penalty averaged over the L locations. (Summed over locations against a per-word loss, the
        # penalty's floor (L - T)^2 / L dwarfs the captions' loss and flattens every attention map.)
        penalty = doubly_stochastic_penalty(out.alphas, mask).mean() / out.alphas.shape[-1]
        loss = cross_entropy + spec.doubly_stochastic * penalty
        sharpness = attention_entropy(out.alphas.detach() if self.hard else out.alphas, mask).sum() / tokens
        weight = sharpness_weight(spec, self.epoch)
        if weight > 0 and not self.hard:
            loss = loss + weight * sharpness
        if self.hard and out.location_log_probs is not None and out.entropy is not None:
            # REINFORCE (Xu et al. eq. 12): the reward of the sampled locations is log p(y | locations),
            # less a moving-average baseline; the entropy bonus keeps the attention from collapsing early.
            reward = -token_loss.sum(dim=1).detach()
            baseline = float(reward.mean()) if self.baseline is None else self.baseline
            chosen = (out.location_log_probs * mask).sum(dim=1)
            entropy = (out.entropy * mask).sum(dim=1)
            loss = loss - ((reward - baseline) * chosen + spec.entropy_weight * entropy).sum() / tokens
            self.baseline = spec.baseline_decay * baseline + (1.0 - spec.baseline_decay) * float(reward.mean())
        self.optimizer.zero_grad(set_to_none=True)
        if self.encoder_optimizer is not None:
            self.encoder_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.decoder.parameters() if p.grad is not None]
        if self.encoder_optimizer is not None:
            params += [p for p in self.encoder.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_value_(params, spec.grad_clip)
        self.optimizer.step()
        if self.encoder_optimizer is not None:
            self.encoder_optimizer.step()
        self.running["loss"] += float(loss.detach())
        self.running["cross_entropy"] += float(cross_entropy.detach())
        self.running["penalty"] += float(penalty.detach())
        self.running["attention_entropy"] += float(sharpness.detach())
        self.running["batches"] += 1

    def _end_epoch(self) -> None:
        batches = max(self.running["batches"], 1.0)
        val = self.data.split_images["val"]
        decoded = self.decode(val, beam=1)
        words = self.data.vocabulary
        score = bleu4([self.data.references[i] for i in val], [words.decode(t) for t in decoded.tokens])
        self.epoch += 1
        self.history.append(
            {
                "epoch": self.epoch,
                "train_loss": self.running["loss"] / batches,
                "train_cross_entropy": self.running["cross_entropy"] / batches,
                "train_penalty": self.running["penalty"] / batches,
                "train_attention_entropy": self.running["attention_entropy"] / batches,
                "val_bleu4": round(score, 6),
            }
        )
        if score > self.best_bleu4:
            self.best_bleu4, self.best_epoch, self.stale = score, self.epoch, 0
            self.best = self._weights()
        else:
            self.stale += 1
            self.stopped = self.spec.patience > 0 and self.stale >= self.spec.patience
        self.batch_index = 0
        self.running = {name: 0.0 for name in self.running}

    def _weights(self) -> dict[str, torch.Tensor]:
        out = module_tensors(self.decoder, "decoder")
        if self.spec.fine_tune:
            out.update(module_tensors(self.encoder, "encoder"))
        return {name: value.clone() for name, value in out.items()}

    def use_best(self) -> None:
        """Put the weights of the best validation epoch back (the model the job leaves)."""
        if self.best:
            load_module(self.decoder, self.best, "decoder")
            if self.spec.fine_tune:
                load_module(self.encoder, self.best, "encoder")

    @torch.no_grad()
    def decode(self, images: list[int], beam: int) -> Decoded:
        """Captions of these images: greedy (beam 1) or beam search, in chunks."""
        self.decoder.eval()
        self.encoder.eval()
        words = self.data.vocabulary
        out = Decoded([], [], [])
        for start in range(0, len(images), DECODE_CHUNK):
            picked = torch.tensor(images[start : start + DECODE_CHUNK], dtype=torch.long, device=self.device)
            features = self.data.annotations(picked, self.encoder, self.spec.encoder.preprocessing)
            options: dict[str, Any] = {"start": words.start, "end": words.end, "max_length": self.spec.max_length}
            part = (
                greedy(self.decoder, features, hard=self.hard, **options)
                if beam == 1
                else beam_search(self.decoder, features, beam_size=beam, hard=self.hard, **options)
            )
            out.tokens += part.tokens
            out.log_probs += part.log_probs
            out.alphas += part.alphas
        return out

    # --- checkpoints ------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {**module_tensors(self.decoder, "decoder"), **optimizer_tensors(self.optimizer, "optimizer")}
        if self.encoder_optimizer is not None:
            tensors.update(module_tensors(self.encoder, "encoder"))
            tensors.update(optimizer_tensors(self.encoder_optimizer, "encoder_optimizer"))
        tensors.update({f"best.{name}": value for name, value in self.best.items()})
        progress = {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "running": self.running,
            "history": self.history,
            "best_bleu4": self.best_bleu4,
            "best_epoch": self.best_epoch,
            "stale": self.stale,
            "stopped": self.stopped,
            "baseline": self.baseline,
        }
        return tensors, progress

    def load_state(self, tensors: dict[str, torch.Tensor], progress: dict[str, Any]) -> None:
        load_module(self.decoder, tensors, "decoder")
        load_optimizer(self.optimizer, tensors, "optimizer")
        if self.encoder_optimizer is not None:
            load_module(self.encoder, tensors, "encoder")
            load_optimizer(self.encoder_optimizer, tensors, "encoder_optimizer")
        self.best = {name[5:]: value.to(self.device) for name, value in tensors.items() if name.startswith("best.")}
        self.epoch, self.batch_index = int(progress["epoch"]), int(progress["batch_index"])
        # A checkpoint from before a running figure was added resumes that figure at 0.
        self.running = {**dict.fromkeys(self.running, 0.0), **{k: float(v) for k, v in progress["running"].items()}}
        self.history = list(progress["history"])
        self.best_bleu4, self.best_epoch = float(progress["best_bleu4"]), int(progress["best_epoch"])
        self.stale, self.stopped = int(progress["stale"]), bool(progress["stopped"])
        self.baseline = None if progress["baseline"] is None else float(progress["baseline"])
