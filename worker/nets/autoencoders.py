"""Autoencoders as plain modules: dense (one or more hidden layers), tied-weight, convolutional and
multimodal, following the Keras blog's recipes (Chollet 2016) and the course's linear/SVD case.

Every autoencoder here maps images (B, C, S, S) in [0, 1] to a flat code (B, D) with ``encode`` and back
with ``decode_logits``, which returns the image *before* its output activation (a sigmoid for [0, 1]
images, none for the linear AE) so that binary cross-entropy can be computed from logits, the stable way
(what Keras does internally for a sigmoid output). ``reconstruct`` applies the output activation.
Multimodal models also take and return an attribute vector per image; the others ignore it.

Initialisation follows Keras (Glorot-uniform weights, zero biases), not PyTorch's default: it is what
the blog's figures were reached with, and for the 784-32-784 model it is measurably better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn


def keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases on every linear and convolution layer (Keras' defaults)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class Autoencoder(nn.Module):
    code_size: int
    relu_code: bool
    """True when codes are non-negative (a ReLU code): decoder samples are clamped at zero."""
    sigmoid_output: bool
    attribute_size: int = 0

    def encode(self, images: torch.Tensor, attributes: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode_logits(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The image before its output activation, and (multimodal) the attribute output."""
        raise NotImplementedError

    def forward(
        self, images: torch.Tensor, attributes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(code, image logits, attribute output)."""
        code = self.encode(images, attributes)
        logits, attribute_out = self.decode_logits(code)
        return code, logits, attribute_out

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.sigmoid_output else logits

    def reconstruct(self, code: torch.Tensor) -> torch.Tensor:
        return self.activate(self.decode_logits(code)[0])


class DenseAutoencoder(Autoencoder):
    """Fully connected: ``hidden`` widths down to a ``code_size`` code, mirrored back up.

    ``hidden=[]`` with a ReLU code and a sigmoid output is the blog's 784-32-784 model; ``[128, 64]`` its
    deep one. ``linear=True`` drops every activation (the course's linear AE, whose decoder spans the top
    singular vectors of the centred data). ``tied=True`` makes each decoder layer use its mirrored encoder
    layer's transposed weight (W = Vᵀ), with its own bias: half the weights.
    """

    def __init__(
        self,
        channels: int,
        size: int,
        code_size: int,
        hidden: Sequence[int] = (),
        *,
        linear: bool = False,
        tied: bool = False,
        relu_code: bool = True,
    ) -> None:
        super().__init__()
        self.shape = (channels, size, size)
        self.code_size, self.linear, self.tied = code_size, linear, tied
        self.relu_code, self.sigmoid_output = relu_code and not linear, not linear
        widths = [channels * size * size, *hidden, code_size]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        if tied:
            # Only the biases are the decoder's own; its weights are the encoder's, transposed (no second
            # reference to the encoder's modules: a shared tensor under two names cannot be saved).
            self.decoder_biases = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a in reversed(widths[:-1]))
            self.decoder = nn.ModuleList()
        else:
            self.decoder = nn.ModuleList(
                nn.Linear(b, a) for a, b in reversed(list(zip(widths[:-1], widths[1:], strict=True)))
            )
        keras_init(self)

    def encode(self, images: torch.Tensor, attributes: torch.Tensor | None = None) -> torch.Tensor:
        x = images.flatten(1)
        for depth, layer in enumerate(self.encoder):
            x = layer(x)
            is_code = depth == len(self.encoder) - 1
            x = F.relu(x) if not self.linear and (self.relu_code or not is_code) else x
        return x

    def decode_logits(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = code
        layers = len(self.encoder)
        for depth in range(layers):
            if self.tied:
                x = F.linear(x, self._encoder_layer(layers - 1 - depth).weight.t(), self.decoder_biases[depth])
            else:
                x = self.decoder[depth](x)
            if depth < layers - 1 and not self.linear:
                x = F.relu(x)
        return x.view(-1, *self.shape), None

    def _encoder_layer(self, index: int) -> nn.Linear:
        return cast(nn.Linear, self.encoder[index])

    def _decoder_layer(self, index: int) -> nn.Linear:
        return cast(nn.Linear, self.decoder[index])

    @torch.no_grad()
    def start_centred(self, mean: torch.Tensor) -> None:
        """Start from centred data: the last decoder bias at the data's mean and the first encoder bias at
        -W·mean, so the code layer starts by seeing x - mean (the SVD case). Training is unchanged; a
        linear AE just no longer has to learn the mean through its biases first (measured on MNIST, k =
        32: the slowest principal angle reaches 0.3° instead of 2.6° in the same 50 epochs)."""
        first = self._encoder_layer(0)
        first.bias.copy_(-(first.weight @ mean.flatten().to(first.weight)))
        last_bias = self.decoder_biases[-1] if self.tied else self._decoder_layer(-1).bias
        last_bias.copy_(mean.flatten().to(last_bias))

    def decoder_weight(self) -> torch.Tensor:
        """The last decoder layer's (d, k) weight: for the one-layer linear AE, its columns are the basis V."""
        return self._encoder_layer(0).weight.t() if self.tied else self._decoder_layer(-1).weight


def conv_last_padding(size: int, layers: int) -> int | None:
    """The padding of the decoder's last convolution that brings it back to ``size`` (1: 'same', 0:
    'valid', the blog's 16 -> 14 for 28 px), or None when neither does. The encoder halves the size
    ``layers`` times, rounding up (Keras' 'same' pooling); the decoder doubles it back."""
    encoded = size
    for _ in range(layers):
        encoded = math.ceil(encoded / 2)
    before_last = encoded * 2 ** (layers - 1)
    if 2 * before_last == size:
        return 1
    if 2 * (before_last - 2) == size:
        return 0
    return None


class ConvAutoencoder(Autoencoder):
    """The blog's convolutional AE: per width a 3x3 ReLU convolution and a 2x2 max-pool (ceil, as Keras'
    'same' padding), then the mirror image (convolution, 2x nearest upsampling), and a 3x3 sigmoid
    convolution to the image. Widths (16, 8, 8) at 28 px give its 4x4x8 code; (32, 32) its denoiser."""

    def __init__(self, channels: int, size: int, widths: Sequence[int] = (16, 8, 8)) -> None:
        super().__init__()
        last_padding = conv_last_padding(size, len(widths))
        if last_padding is None:
            raise ValueError(f"a {len(widths)}-layer conv autoencoder cannot return to {size} px")
        self.relu_code, self.sigmoid_output = True, True
        encoder: list[nn.Module] = []
        for cin, cout in zip([channels, *widths[:-1]], widths, strict=True):
            encoder += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = []
        back = list(reversed(widths))
        for index, (cin, cout) in enumerate(zip([back[0], *back[:-1]], back, strict=True)):
            padding = last_padding if index == len(back) - 1 else 1
            decoder += [nn.Conv2d(cin, cout, 3, padding=padding), nn.ReLU(), nn.Upsample(scale_factor=2)]
        decoder.append(nn.Conv2d(back[-1], channels, 3, padding=1))
        self.decoder = nn.Sequential(*decoder)
        encoded = size
        for _ in widths:
            encoded = math.ceil(encoded / 2)
        self.code_shape = (widths[-1], encoded, encoded)
        self.code_size = widths[-1] * encoded * encoded
        keras_init(self)

    def encode(self, images: torch.Tensor, attributes: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(images).flatten(1)

    def decode_logits(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.decoder(code.view(-1, *self.code_shape)), None


class MultimodalAutoencoder(Autoencoder):
    """Heterogeneous data in one joint code: the image through dense ReLU layers, the attribute vector
    (a class one-hot, or numbers per image) through its own small ReLU layer, concatenated into one
    ReLU code; two decoders rebuild the image (logits of a sigmoid) and the attributes (class logits, or
    the numbers themselves)."""

    def __init__(
        self,
        channels: int,
        size: int,
        code_size: int,
        attribute_size: int,
        hidden: Sequence[int] = (128,),
        attribute_hidden: int = 32,
        relu_code: bool = True,
    ) -> None:
        super().__init__()
        self.shape = (channels, size, size)
        self.code_size, self.attribute_size = code_size, attribute_size
        self.relu_code, self.sigmoid_output = relu_code, True
        widths = [channels * size * size, *hidden]
        self.image_encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.attribute_encoder = nn.Linear(attribute_size, attribute_hidden)
        self.joint = nn.Linear(widths[-1] + attribute_hidden, code_size)
        self.image_decoder = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip([code_size, *reversed(widths[1:])], reversed(widths), strict=True)
        )
        self.attribute_decoder = nn.Sequential(
            nn.Linear(code_size, attribute_hidden), nn.ReLU(), nn.Linear(attribute_hidden, attribute_size)
        )
        keras_init(self)

    def encode(self, images: torch.Tensor, attributes: torch.Tensor | None = None) -> torch.Tensor:
        if attributes is None:
            raise ValueError("a multimodal autoencoder needs each image's attributes")
        x = images.flatten(1)
        for layer in self.image_encoder:
            x = F.relu(layer(x))
        a = F.relu(self.attribute_encoder(attributes))
        code = self.joint(torch.cat([x, a], dim=1))
        return F.relu(code) if self.relu_code else code

    def decode_logits(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = code
        for depth, layer in enumerate(self.image_decoder):
            x = layer(x)
            if depth < len(self.image_decoder) - 1:
                x = F.relu(x)
        return x.view(-1, *self.shape), self.attribute_decoder(code)


def weight_count(module: nn.Module) -> int:
    """Elements of the weight matrices and kernels (biases left out): what tying halves."""
    return sum(p.numel() for name, p in module.named_parameters() if p.dim() > 1 and "bias" not in name)


def build_autoencoder(network: dict[str, Any]) -> Autoencoder:
    """The network a config describes (what a training job stores and an apply job rebuilds from):
    ``architecture``, ``channels``, ``input_size``, ``code_size``, ``hidden``, ``conv_channels``,
    ``attribute_size``, ``code_activation`` (``relu`` when absent: models trained before it existed).
    Randomly initialised (Keras' scheme)."""
    arch, channels, size = network["architecture"], int(network["channels"]), int(network["input_size"])
    hidden = [int(w) for w in network.get("hidden", [])]
    relu_code = network.get("code_activation", "relu") == "relu"
    if arch == "conv":
        return ConvAutoencoder(channels, size, [int(w) for w in network["conv_channels"]])
    if arch == "multimodal":
        attribute_size = int(network["attribute_size"])
        return MultimodalAutoencoder(
            channels, size, int(network["code_size"]), attribute_size, hidden, relu_code=relu_code
        )
    if arch in ("dense", "deep", "sparse", "linear", "tied"):
        return DenseAutoencoder(
            channels,
            size,
            int(network["code_size"]),
            hidden,
            linear=arch == "linear",
            tied=arch == "tied",
            relu_code=relu_code,
        )
    raise ValueError(f"unknown autoencoder architecture {arch!r}")
