"""The autoencoder networks: the blog's shapes and parameter counts, tied weights that really are the
encoder's, decoders that return to any size the spec accepts, and state dicts that save as safetensors."""

from __future__ import annotations

import math

import pytest
import safetensors.torch
import torch

from shared.specs.autoencoder import conv_fits
from worker.nets.autoencoders import (
    ConvAutoencoder,
    DenseAutoencoder,
    MultimodalAutoencoder,
    build_autoencoder,
    conv_last_padding,
    weight_count,
)


def test_the_blogs_models_have_its_shapes_and_sizes() -> None:
    dense = DenseAutoencoder(1, 28, 32)
    assert sum(p.numel() for p in dense.parameters()) == 784 * 32 + 32 + 32 * 784 + 784  # Keras: 50,992
    deep = DenseAutoencoder(1, 28, 32, [128, 64])
    assert [layer.out_features for layer in deep.encoder] == [128, 64, 32]
    assert [layer.out_features for layer in deep.decoder] == [64, 128, 784]
    conv = ConvAutoencoder(1, 28)
    assert sum(p.numel() for p in conv.parameters()) == 4385  # Keras' summary of the blog's conv AE
    x = torch.rand(5, 1, 28, 28)
    code, logits, attributes = conv(x)
    assert conv.code_shape == (8, 4, 4) and code.shape == (5, 128) and logits.shape == x.shape and attributes is None
    assert (code >= 0).all()  # ReLU then max-pool: a non-negative code
    denoiser = ConvAutoencoder(1, 28, (32, 32))
    assert denoiser.code_shape == (32, 7, 7) and denoiser(x)[1].shape == x.shape


def test_keras_initialisation() -> None:
    dense = DenseAutoencoder(1, 28, 32)
    first = dense.encoder[0].requires_grad_(False)
    bound = math.sqrt(6 / (784 + 32))  # Glorot-uniform
    assert float(first.weight.abs().max()) <= bound and float(first.weight.abs().max()) > 0.9 * bound
    assert all(float(layer.bias.detach().abs().max()) == 0 for layer in [*dense.encoder, *dense.decoder])


@pytest.mark.parametrize("hidden", [[], [128, 64]])
def test_tied_has_half_the_weights_and_uses_the_encoders(hidden: list[int]) -> None:
    untied, tied = DenseAutoencoder(1, 28, 32, hidden), DenseAutoencoder(1, 28, 32, hidden, tied=True)
    assert 2 * weight_count(tied) == weight_count(untied)
    assert sum(p.numel() for p in tied.parameters()) < 0.52 * sum(p.numel() for p in untied.parameters())
    code = torch.rand(3, 32)
    before = tied.reconstruct(code)
    with torch.no_grad():
        tied.encoder[0].weight.mul_(2.0)  # the decoder's last layer is W1 transposed: it changes too
    assert not torch.allclose(before, tied.reconstruct(code))
    assert torch.allclose(tied.decoder_weight(), tied.encoder[0].weight.t())


def test_linear_has_no_activation_and_can_start_centred() -> None:
    model = DenseAutoencoder(1, 4, 3, linear=True)
    x = torch.randn(6, 1, 4, 4)
    code = model.encode(x)
    assert torch.allclose(code, x.flatten(1) @ model.encoder[0].weight.t())  # signs kept: no ReLU
    assert (code < 0).any() and torch.allclose(model.reconstruct(code), model.decode_logits(code)[0])
    mean = torch.rand(1, 4, 4)
    model.start_centred(mean)
    assert torch.allclose(model.encode(mean[None]), torch.zeros(1, 3), atol=1e-6)  # x - mean reaches the code
    assert torch.allclose(model.reconstruct(torch.zeros(1, 3)), mean[None])


@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_conv_decoders_return_to_every_size_the_spec_accepts(layers: int) -> None:
    for size in range(8, 70):
        padding = conv_last_padding(size, layers)
        assert (padding is not None) == conv_fits(size, layers), (size, layers)
        if padding is not None and size in (28, 32, 36, 64):
            model = ConvAutoencoder(3, size, [4] * layers)
            assert model(torch.rand(1, 3, size, size))[1].shape == (1, 3, size, size)
    assert conv_fits(28, 3) and conv_fits(32, 3) and conv_fits(28, 2) and not conv_fits(30, 3)


def test_multimodal_encodes_both_and_decodes_both() -> None:
    model = MultimodalAutoencoder(1, 28, 16, 10)
    x, a = torch.rand(4, 1, 28, 28), torch.eye(10)[:4]
    code, logits, out = model(x, a)
    assert code.shape == (4, 16) and logits.shape == x.shape and out is not None and out.shape == (4, 10)
    assert not torch.allclose(model.encode(x, a), model.encode(x, torch.eye(10)[4:8]))  # the attributes matter
    with pytest.raises(ValueError, match="attributes"):
        model.encode(x)


@pytest.mark.parametrize(
    "network",
    [
        {"architecture": "tied", "hidden": [16]},
        {"architecture": "conv", "conv_channels": [4, 4]},
        {"architecture": "multimodal", "hidden": [16], "attribute_size": 3},
        {"architecture": "linear"},
    ],
)
def test_a_model_saves_as_safetensors_and_rebuilds(network: dict[str, object]) -> None:
    config = {"channels": 1, "input_size": 28, "code_size": 8, "hidden": [], **network}
    model = build_autoencoder(config)
    blob = safetensors.torch.save(model.state_dict())  # no tensor shared under two names
    rebuilt = build_autoencoder(config)
    rebuilt.load_state_dict(safetensors.torch.load(blob), strict=True)
    x = torch.rand(2, 1, 28, 28)
    a = torch.rand(2, 3) if network["architecture"] == "multimodal" else None
    assert torch.equal(model(x, a)[1], rebuilt(x, a)[1])
