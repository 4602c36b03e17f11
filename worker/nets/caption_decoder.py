"""The LSTM decoder of Show, Attend and Tell (Xu et al. 2015, section 3.1.2).

At step t: attention alpha_t over the L locations from h_{t-1}; the context z_t is the alpha-weighted sum
of the annotation vectors (soft), or the vector at one location drawn from alpha_t (hard; at inference the
most attended one); the gating scalar beta_t = sigmoid(f_beta(h_{t-1})) scales it (optional); the LSTM reads
[E y_{t-1}; beta_t z_t]; the deep output layer gives p(y_t) ~ exp(L_o(E y_{t-1} + L_h h_t + L_z z_t)).
The initial state is an affine map of the mean annotation vector, or learned and the same for every image.

With ``query`` "current" the order within a step changes (the spatial attention of Lu et al. 2017): the
LSTM first reads [E y_{t-1}; the mean annotation vector], and alpha_t, z_t and beta_t come from the new
h_t, so the map that makes word t can depend on word t-1 (the colour just said picks the object whose
kind comes next); the deep output is the same. With "previous" (the paper's) the map for word t is
chosen before the decoder has read word t-1.

Dropout draws its masks from a generator the caller passes (no global random state), so a training run
resumed from a checkpoint repeats bit for bit; with no generator there is no dropout (inference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from worker.nets.attention import AdditiveAttention

Glimpse = Literal["soft", "sample", "argmax"]


@dataclass
class Teacher:
    """A teacher-forced pass over captions: per step logits, attention and (hard) the sampled locations'
    log-probabilities and the attention's entropy."""

    logits: torch.Tensor  # (B, T, V)
    alphas: torch.Tensor  # (B, T, L)
    location_log_probs: torch.Tensor | None = None  # (B, T)
    entropy: torch.Tensor | None = None  # (B, T)


class AttentionDecoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        feature_dim: int,
        embed_dim: int = 512,
        attention_dim: int = 512,
        decoder_dim: int = 512,
        dropout: float = 0.5,
        gate: bool = True,
        initial_state: str = "mean",
        query: str = "previous",
    ) -> None:
        super().__init__()
        if query not in ("previous", "current"):
            raise ValueError(f"query must be 'previous' or 'current', not {query!r}")
        self.dropout = dropout
        self.initial_state = initial_state
        self.query = query
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.attention = AdditiveAttention(feature_dim, decoder_dim, attention_dim)
        self.init_h = nn.Linear(feature_dim, decoder_dim)
        self.init_c = nn.Linear(feature_dim, decoder_dim)
        self.gate = nn.Linear(decoder_dim, 1) if gate else None
        self.lstm = nn.LSTMCell(embed_dim + feature_dim, decoder_dim)
        self.out_hidden = nn.Linear(decoder_dim, embed_dim)
        self.out_context = nn.Linear(feature_dim, embed_dim)
        self.out = nn.Linear(embed_dim, vocab_size)

    def start(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, D) annotation vectors -> attention keys and the initial (h, c): an affine map of the mean
        annotation vector (the paper's), or (``initial_state`` "learned") the same for every image, so that
        everything the decoder knows of the image comes through its attention."""
        mean = features.mean(dim=1)
        if self.initial_state == "learned":
            mean = torch.zeros_like(mean)  # the maps' biases are then the learned initial state
        return self.attention.project(features), self.init_h(mean), self.init_c(mean)

    def glimpse(
        self,
        features: torch.Tensor,
        keys: torch.Tensor,
        h: torch.Tensor,
        mode: Glimpse,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """alpha_t (B, L), the gated context (B, D), and the chosen location (B,) for hard attention."""
        alpha = self.attention(keys, h)
        location = None
        if mode == "soft":
            context = torch.bmm(alpha[:, None, :], features).squeeze(1)
        else:
            if mode == "sample":
                location = torch.multinomial(alpha.detach(), 1, generator=generator).squeeze(1)
            else:
                location = alpha.argmax(dim=1)
            context = features[torch.arange(len(features), device=features.device), location]
        if self.gate is not None:
            context = torch.sigmoid(self.gate(h)) * context
        return alpha, context, location

    def advance(
        self,
        features: torch.Tensor,
        keys: torch.Tensor,
        words: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        mode: Glimpse,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """One step reading ``words`` (B,): the deep output's pre-projection (B, m), alpha (B, L), the chosen
        location (hard) and the new (h, c); attention before the LSTM ("previous") or after it ("current")."""
        embedded = self.embedding(words)
        if self.query == "current":
            h, c = self.lstm(torch.cat([embedded, features.mean(dim=1)], dim=1), (h, c))
            alpha, context, location = self.glimpse(features, keys, h, mode, generator)
        else:
            alpha, context, location = self.glimpse(features, keys, h, mode, generator)
            h, c = self.lstm(torch.cat([embedded, context], dim=1), (h, c))
        return embedded + self.out_hidden(h) + self.out_context(context), alpha, location, h, c

    def _drop(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if generator is None or self.dropout == 0.0:
            return x
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.dropout
        return x * keep.to(x.dtype) / (1.0 - self.dropout)

    def forward(
        self,
        features: torch.Tensor,
        inputs: torch.Tensor,
        *,
        hard: bool = False,
        generator: torch.Generator | None = None,
    ) -> Teacher:
        """Teacher forcing: ``inputs`` (B, T) are <start> w1 ... w_{T-1}; step t predicts word t+1.
        ``generator`` draws dropout masks and (hard) locations; None: no dropout, argmax locations."""
        keys, h, c = self.start(features)
        mode: Glimpse = "soft" if not hard else ("sample" if generator is not None else "argmax")
        deep, alphas, log_probs, entropies = [], [], [], []
        for t in range(inputs.shape[1]):
            out, alpha, location, h, c = self.advance(features, keys, inputs[:, t], h, c, mode, generator)
            deep.append(out)
            alphas.append(alpha)
            if hard:
                log_alpha = torch.log(alpha.clamp_min(1e-12))
                if location is not None:
                    log_probs.append(log_alpha.gather(1, location[:, None]).squeeze(1))
                entropies.append(-(alpha * log_alpha).sum(dim=1))
        logits = self.out(self._drop(torch.stack(deep, dim=1), generator))
        return Teacher(
            logits,
            torch.stack(alphas, dim=1),
            torch.stack(log_probs, dim=1) if log_probs else None,
            torch.stack(entropies, dim=1) if entropies else None,
        )

    @torch.no_grad()
    def step(
        self,
        features: torch.Tensor,
        keys: torch.Tensor,
        h: torch.Tensor,
        c: torch.Tensor,
        words: torch.Tensor,
        hard: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One inference step: log-probabilities of the next word (B, V), alpha (B, L), new (h, c)."""
        out, alpha, _, h, c = self.advance(features, keys, words, h, c, "argmax" if hard else "soft")
        return torch.log_softmax(self.out(out), dim=-1), alpha, h, c
