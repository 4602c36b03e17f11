"""The Recurrent Attention Model (Mnih et al. 2014) in its parts, each usable alone: the glimpse network
(the sensor's patches and the location, 128 + 128 -> 256), the core network (the paper's ReLU RNN, or
an LSTM), the location network (a Gaussian policy of fixed std whose mean comes from the core state),
the action network and a learned baseline; and the hybrid loss (cross-entropy for the action, squared
error for the baseline, REINFORCE for the locations).

The model draws no random numbers itself: the first location and the policy's standard-normal noise
are passed in, so the caller decides what they depend on (a training batch's generator, or each
image's own, so an image's glimpses never depend on its batch neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worker.nets.glimpse_sensor import glimpse


@dataclass(frozen=True)
class GlimpseConfig:
    image_size: int
    channels: int = 1
    classes: int = 10
    glimpses: int = 6
    patch_size: int = 8
    scales: int = 1
    scale: float = 2.0
    glimpse_hidden: int = 128
    location_hidden: int = 128
    hidden: int = 256
    core: str = "rnn"  # or "lstm"
    std: float = 0.05
    random_locations: bool = False  # a control: glimpse at uniformly random places, not the policy's

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GlimpseConfig:
        names = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in names})

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class GlimpseNetwork(nn.Module):
    """g_t = ReLU(W_what ReLU(W_1 patches) + W_where ReLU(W_2 l)): what was seen and where."""

    def __init__(self, config: GlimpseConfig) -> None:
        super().__init__()
        self.config = config
        retina = config.scales * config.channels * config.patch_size**2
        size = config.glimpse_hidden + config.location_hidden
        self.patches = nn.Linear(retina, config.glimpse_hidden)
        self.location = nn.Linear(2, config.location_hidden)
        self.what = nn.Linear(config.glimpse_hidden, size)
        self.where = nn.Linear(config.location_hidden, size)

    def retina(self, images: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
        c = self.config
        return glimpse(images, locations, c.patch_size, c.scales, c.scale)

    def forward(self, images: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
        seen = self.retina(images, locations).flatten(1)
        what = self.what(F.relu(self.patches(seen)))
        where = self.where(F.relu(self.location(locations)))
        return F.relu(what + where)


class CoreNetwork(nn.Module):
    """h_t = ReLU(W_g g_t + W_h h_{t-1}) (the paper's classification core), or an LSTM cell."""

    def __init__(self, config: GlimpseConfig) -> None:
        super().__init__()
        size = config.glimpse_hidden + config.location_hidden
        self.kind = config.core
        self.hidden = config.hidden
        if config.core == "lstm":
            self.cell: nn.Module = nn.LSTMCell(size, config.hidden)
        else:
            self.input = nn.Linear(size, config.hidden)
            self.recurrent = nn.Linear(config.hidden, config.hidden)

    def initial(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, self.hidden, device=device)
        return zeros, zeros.clone()

    def forward(self, g: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "lstm":
            h, c = self.cell(g, state)
            return h, c
        h = F.relu(self.input(g) + self.recurrent(state[0]))
        return h, state[1]


class LocationNetwork(nn.Module):
    """The policy: mean = tanh(W_2 ReLU(W_1 h_t)), location ~ N(mean, std^2), clamped to [-1, 1].
    It reads the core state detached, as the widely used PyTorch version does: the locations are
    learned by REINFORCE alone and the core by the classification loss."""

    def __init__(self, config: GlimpseConfig) -> None:
        super().__init__()
        self.std = config.std
        self.hidden = nn.Linear(config.hidden, config.hidden // 2)
        self.mean = nn.Linear(config.hidden // 2, 2)

    def forward(self, h: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, sampled location before clamping (no gradient), its log-probability summed over x, y)."""
        mean = torch.tanh(self.mean(F.relu(self.hidden(h.detach()))))
        sample = (mean + self.std * noise).detach()
        return mean, sample, gaussian_log_prob(sample, mean, self.std)


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(sample; mean, std^2) summed over the last axis (what torch.distributions.Normal gives)."""
    return torch.distributions.Normal(mean, std).log_prob(sample).sum(dim=-1)


@dataclass
class Episode:
    logits: torch.Tensor  # (B, classes): the action network's output after the last glimpse
    log_pi: torch.Tensor  # (B, T - 1): log-probability of each location the policy chose
    baselines: torch.Tensor  # (B, T - 1): the baseline's reward estimate at each choice
    locations: torch.Tensor  # (B, T, 2): where each glimpse was taken, in [-1, 1]


class RecurrentAttention(nn.Module):
    def __init__(self, config: GlimpseConfig) -> None:
        super().__init__()
        self.config = config
        self.glimpse = GlimpseNetwork(config)
        self.core = CoreNetwork(config)
        self.locator = LocationNetwork(config)
        self.baseline = nn.Linear(config.hidden, 1)
        self.action = nn.Linear(config.hidden, config.classes)

    def forward(self, images: torch.Tensor, start: torch.Tensor, noise: torch.Tensor) -> Episode:
        """``images`` (B, C, S, S) in [0, 1]; ``start`` (B, 2) the first location; ``noise`` (B, T - 1, 2)
        the draws for the later choices (T glimpses): standard normal for the policy, uniform locations for
        the random control (``draws`` makes both)."""
        steps = self.config.glimpses
        state = self.core.initial(len(images), images.device)
        location = start.clamp(-1.0, 1.0)
        visited, log_pis, baselines = [location], [], []
        for t in range(steps):
            state = self.core(self.glimpse(images, location), state)
            if t == steps - 1:
                break
            baselines.append(self.baseline(state[0].detach()).squeeze(1))
            if self.config.random_locations:  # the noise is the next location itself
                location = noise[:, t].clamp(-1.0, 1.0)
                log_pis.append(images.new_zeros(len(images)))
            else:
                _mean, sample, log_pi = self.locator(state[0], noise[:, t])
                log_pis.append(log_pi)
                location = sample.clamp(-1.0, 1.0)
            visited.append(location)
        empty = images.new_zeros(len(images), 0)
        return Episode(
            logits=self.action(state[0]),
            log_pi=torch.stack(log_pis, dim=1) if log_pis else empty,
            baselines=torch.stack(baselines, dim=1) if baselines else empty,
            locations=torch.stack(visited, dim=1),
        )


def draws(
    config: GlimpseConfig, batch: int, generator: torch.Generator, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(start (B, 2) uniform in [-1, 1], noise (B, T - 1, 2)) for ``RecurrentAttention.forward``."""
    start = torch.rand(batch, 2, generator=generator) * 2.0 - 1.0
    shape = (batch, max(config.glimpses - 1, 0), 2)
    if config.random_locations:
        noise = torch.rand(shape, generator=generator) * 2.0 - 1.0
    else:
        noise = torch.randn(shape, generator=generator)
    return start.to(device or start.device), noise.to(device or noise.device)


@dataclass
class Losses:
    total: torch.Tensor
    action: torch.Tensor
    baseline: torch.Tensor
    reinforce: torch.Tensor
    reward: torch.Tensor  # (B,) 1 where the final answer was right


def reinforce_term(log_pi: torch.Tensor, reward: torch.Tensor, baselines: torch.Tensor) -> torch.Tensor:
    """-sum_t log pi(l_t) (R - b_t), summed over the choices and averaged over the batch: its gradient moves
    each choice's probability up when the reward beat the baseline and down when it fell short."""
    advantage = reward[:, None] - baselines.detach()
    return (-log_pi * advantage).sum(dim=1).mean()


def hybrid_loss(episode: Episode, labels: torch.Tensor, reinforce_weight: float) -> Losses:
    """Cross-entropy for the action, squared error of the baseline against the reward, and the REINFORCE
    term for the locations (reward 1 for a right final answer, else 0)."""
    action = F.cross_entropy(episode.logits, labels)
    reward = (episode.logits.detach().argmax(dim=1) == labels).float()
    if episode.baselines.shape[1]:
        baseline = F.mse_loss(episode.baselines, reward[:, None].expand_as(episode.baselines))
        reinforce = reinforce_term(episode.log_pi, reward, episode.baselines)
    else:  # one glimpse: the policy never chooses
        baseline = reinforce = episode.logits.new_zeros(())
    total = action + baseline + reinforce_weight * reinforce
    return Losses(total, action.detach(), baseline.detach(), reinforce.detach(), reward)


def build_glimpse_model(config: dict[str, Any]) -> RecurrentAttention:
    return RecurrentAttention(GlimpseConfig.from_dict(config["network"]))
