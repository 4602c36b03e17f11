"""Decoding captions from a trained decoder: greedy, and beam search batched over images.

Beam search keeps ``beam_size`` live hypotheses per image, all images' beams in one batch of B x k rows:
each step scores every (beam, word) continuation by its total log-probability, keeps the k best per
image, and sets aside hypotheses that emitted ``<end>``. An image is done once its best finished caption
scores at least as high as every live beam (a log-probability only falls as words are added); at
``max_length`` the live beams count as finished. Scores are plain sums of log-probabilities (no length
normalisation), so a caption's score is its log-probability under the model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worker.nets.caption_decoder import AttentionDecoder


@dataclass
class Decoded:
    tokens: list[list[int]]
    """Word indices per image, without <start> and <end>."""
    log_probs: list[float]
    """log p(caption | image): its words and, when it ended, the <end>."""
    alphas: list[torch.Tensor]
    """(words, L) per image: the attention that produced each word (on the CPU)."""


@torch.no_grad()
def greedy(
    decoder: AttentionDecoder, features: torch.Tensor, *, start: int, end: int, max_length: int, hard: bool = False
) -> Decoded:
    """The most probable word at each step, for a batch of images (B, L, D)."""
    batch = len(features)
    keys, h, c = decoder.start(features)
    words = torch.full((batch,), start, dtype=torch.long, device=features.device)
    total = torch.zeros(batch, device=features.device)
    live = torch.ones(batch, dtype=torch.bool, device=features.device)
    picked, attention, alive = [], [], []
    for _ in range(max_length):
        log_p, alpha, h, c = decoder.step(features, keys, h, c, words, hard)
        score, words = log_p.max(dim=1)
        total = torch.where(live, total + score, total)
        picked.append(words)
        attention.append(alpha)
        alive.append(live & (words != end))
        live = alive[-1]
        if not bool(live.any()):
            break
    chosen, alphas, keep = torch.stack(picked, 1).cpu(), torch.stack(attention, 1).cpu(), torch.stack(alive, 1).cpu()
    lengths = keep.sum(dim=1).tolist()
    return Decoded(
        [chosen[b, : lengths[b]].tolist() for b in range(batch)],
        total.cpu().tolist(),
        [alphas[b, : lengths[b]] for b in range(batch)],
    )


@torch.no_grad()
def beam_search(
    decoder: AttentionDecoder,
    features: torch.Tensor,
    *,
    start: int,
    end: int,
    beam_size: int,
    max_length: int,
    hard: bool = False,
) -> Decoded:
    """The most probable caption found with ``beam_size`` hypotheses per image, all images at once."""
    batch, locations, dim = features.shape
    rows = features.repeat_interleave(beam_size, dim=0)
    keys, h, c = decoder.start(rows)
    device = features.device
    scores = torch.full((batch, beam_size), float("-inf"), device=device)
    scores[:, 0] = 0.0  # every beam starts as the same empty caption: expand only one
    words = torch.full((batch * beam_size,), start, dtype=torch.long, device=device)
    offsets = (torch.arange(batch, device=device) * beam_size)[:, None]
    steps_words, steps_parents, steps_alphas = [], [], []
    best = torch.full((batch,), float("-inf"), device=device)
    best_step = torch.full((batch,), -1, dtype=torch.long, device=device)
    best_beam = torch.zeros(batch, dtype=torch.long, device=device)
    best_ended = torch.zeros(batch, dtype=torch.bool, device=device)
    for t in range(max_length):
        log_p, alpha, h, c = decoder.step(rows, keys, h, c, words, hard)
        vocab = log_p.shape[1]
        width = min(beam_size, vocab)
        candidates = (scores[:, :, None] + log_p.view(batch, beam_size, vocab)).view(batch, -1)
        top, index = candidates.topk(width, dim=1)
        if width < beam_size:  # fewer words than beams: the rest stay empty
            pad = beam_size - width
            top = torch.cat([top, top.new_full((batch, pad), float("-inf"))], 1)
            index = torch.cat([index, index.new_zeros((batch, pad))], 1)
        parent, word = index // vocab, index % vocab
        source = (parent + offsets).view(-1)
        h, c = h[source], c[source]
        steps_words.append(word)
        steps_parents.append(parent)
        steps_alphas.append(alpha[source].view(batch, beam_size, locations))
        ended = word == end
        finished, finished_beam = torch.where(ended, top, torch.full_like(top, float("-inf"))).max(dim=1)
        better = finished > best
        best, best_step = torch.where(better, finished, best), torch.where(better, t, best_step)
        best_beam, best_ended = torch.where(better, finished_beam, best_beam), best_ended | better
        scores = torch.where(ended, torch.full_like(top, float("-inf")), top)
        if t == max_length - 1:  # out of room: the live beams finish here without <end>
            last, last_beam = scores.max(dim=1)
            better = last > best
            best, best_step = torch.where(better, last, best), torch.where(better, t, best_step)
            best_beam, best_ended = torch.where(better, last_beam, best_beam), best_ended & ~better
        words = word.view(-1)
        if bool((scores.max(dim=1).values <= best).all()):
            break
    return _trace(steps_words, steps_parents, steps_alphas, best, best_step, best_beam, best_ended)


def _trace(
    steps_words: list[torch.Tensor],
    steps_parents: list[torch.Tensor],
    steps_alphas: list[torch.Tensor],
    best: torch.Tensor,
    best_step: torch.Tensor,
    best_beam: torch.Tensor,
    best_ended: torch.Tensor,
) -> Decoded:
    """Follow each image's best hypothesis back from its last step to the first."""
    words = torch.stack(steps_words).cpu()  # (T, B, k)
    parents = torch.stack(steps_parents).cpu()
    alphas = torch.stack(steps_alphas).cpu()  # (T, B, k, L)
    tokens, attention = [], []
    for b in range(words.shape[1]):
        t, beam = int(best_step[b]), int(best_beam[b])
        picked: list[int] = []
        maps: list[torch.Tensor] = []
        while t >= 0:
            picked.append(int(words[t, b, beam]))
            maps.append(alphas[t, b, beam])
            beam = int(parents[t, b, beam])
            t -= 1
        picked.reverse()
        maps.reverse()
        if bool(best_ended[b]):  # the <end> and the attention that produced it are not part of the caption
            picked, maps = picked[:-1], maps[:-1]
        tokens.append(picked)
        attention.append(torch.stack(maps) if maps else alphas.new_zeros((0, alphas.shape[-1])))
    return Decoded(tokens, best.cpu().tolist(), attention)
