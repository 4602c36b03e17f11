"""A whole captioner: the grid encoder and the attention decoder, rebuilt from a trained model's config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from worker.nets.caption_decoder import AttentionDecoder
from worker.nets.grid_encoder import GridEncoder, backbone


class Captioner(nn.Module):
    def __init__(self, encoder: GridEncoder, decoder: AttentionDecoder, hard: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.hard = hard

    def annotations(self, inputs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Model inputs (B, 3, S, S) -> annotation vectors (B, L, D) and the grid's (H, W)."""
        grid = self.encoder(inputs)
        batch, height, width, dim = grid.shape
        return grid.reshape(batch, height * width, dim), (height, width)


def build_captioner(config: dict[str, Any]) -> Captioner:
    """The architecture a config describes, randomly initialised (load the tensors over it)."""
    enc, dec = config["encoder"], config["decoder"]
    encoder = GridEncoder(backbone(enc["arch"]), enc["layer"], enc.get("grid"), bool(enc["coordinates"]))
    decoder = AttentionDecoder(
        len(config["vocabulary"]),
        int(dec["feature_dim"]),
        int(dec["embed_dim"]),
        int(dec["attention_dim"]),
        int(dec["decoder_dim"]),
        float(dec["dropout"]),
        bool(dec.get("gate", True)),  # models saved before the gate was optional all have it
        str(dec.get("initial_state", "mean")),
        str(dec.get("query", "previous")),  # models saved before the query was a choice all attend first
    )
    return Captioner(encoder, decoder, config["attention"] == "hard")
