"""Soft attention over the L annotation vectors (Xu et al. 2015, eq. 4-6), its doubly stochastic penalty and
the entropy of each step's map (a penalty on it sharpens the maps).

e_ti = w . tanh(W_a a_i + W_h h_{t-1}),  alpha_t = softmax_i(e_ti). The projection W_a a_i does not depend
on t: it is computed once per image (``project``) and reused at every step and by every beam."""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    def __init__(self, feature_dim: int, hidden_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.features = nn.Linear(feature_dim, attention_dim)
        self.hidden = nn.Linear(hidden_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(B, L, D) annotation vectors -> (B, L, A) keys."""
        return self.features(features)  # type: ignore[no-any-return]

    def forward(self, keys: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Keys (B, L, A) and the previous hidden state (B, n) -> alpha (B, L), summing to 1 over L."""
        energy = self.score(torch.tanh(keys + self.hidden(hidden)[:, None, :])).squeeze(-1)
        return torch.softmax(energy, dim=-1)


def doubly_stochastic_penalty(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum_i (1 - sum_t alpha_ti)^2 per caption (eq. 14): each location should get, over the caption's
    steps (``mask`` (B, T) marks them), about as much attention in all as any other. alphas: (B, T, L)."""
    total = (alphas * mask[:, :, None].to(alphas.dtype)).sum(dim=1)
    return ((1.0 - total) ** 2).sum(dim=-1)


def attention_entropy(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """- sum_i alpha_ti log alpha_ti summed over the caption's steps (``mask`` (B, T)), per caption: 0 when
    every step looks at one location, T log L when every step looks everywhere. alphas: (B, T, L)."""
    per_step = -(alphas * torch.log(alphas.clamp_min(1e-12))).sum(dim=-1)
    return (per_step * mask.to(alphas.dtype)).sum(dim=1)
