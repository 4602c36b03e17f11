"""The autoencoder loop on small data: a linear AE finds the SVD subspace, training beats the untrained
model by far, the sparse code is sparser at a similar loss, denoising beats the noisy input, tied weights
reach a comparable loss with half the weights, and the test set's noise does not depend on chunking."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from shared.kinds import parse_spec
from tests.support.contexts import RecordingTrainingContext
from worker.inputs.mnist import load_mnist
from worker.nets.autoencoders import Autoencoder, DenseAutoencoder, weight_count
from worker.pipelines.autoencoder_analysis import fit_projection, pixel_mean, principal_angles
from worker.pipelines.autoencoder_loop import LoopData, LossSettings, Trainer


@cache
def _digits(train: int = 2000, test: int = 500) -> LoopData:
    ctx = RecordingTrainingContext()
    train_x, _ = load_mnist(ctx.asset("."), ctx.scratch("mnist"), True)
    test_x, _ = load_mnist(ctx.asset("."), ctx.scratch("mnist"), False)
    return LoopData(torch.from_numpy(train_x[:train, None].copy()), torch.from_numpy(test_x[:test, None].copy()))


@pytest.fixture
def digits(assets_dir: Path) -> LoopData:
    return _digits()


def _trained(model: Autoencoder, data: LoopData, losses: LossSettings, epochs: int = 6, **options: object) -> Trainer:
    settings = {"batch_size": 64, "learning_rate": 2e-3, "seed": 0, **options}
    trainer = Trainer(model, data, losses, epochs=epochs, **settings)  # type: ignore[arg-type]
    trainer.train_for(1e9)
    return trainer


def _model(seed: int = 0, **options: object) -> DenseAutoencoder:
    torch.manual_seed(seed)
    return DenseAutoencoder(1, 28, 32, **options)  # type: ignore[arg-type]


def test_linear_autoencoder_spans_the_top_singular_vectors() -> None:
    """Low-rank data with a clear spectral gap: the decoder's column space is the top-4 SVD subspace of
    the centred data to under a degree, and its squared error is close to the rank-4 SVD's (the optimum)."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(64, 4)))[0].T  # (4, 64) orthonormal rows
    latent = rng.normal(size=(3000, 4)) * np.array([1.2, 1.0, 0.8, 0.6])
    pixels = 0.5 + 0.64 * latent @ basis + rng.normal(scale=0.004, size=(3000, 64))  # 0.5% of pixels clip
    images = torch.from_numpy(np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8).reshape(3000, 1, 8, 8))
    data = LoopData(images[:2500], images[2500:])
    torch.manual_seed(0)
    model = DenseAutoencoder(1, 8, 4, linear=True)
    mean = pixel_mean(data.train_x, chunk=700)  # chunked, as for an archive too large for one float tensor
    assert torch.allclose(mean, data.train_x.float().mean(dim=0) / 255.0, atol=1e-6)
    model.start_centred(mean)
    _trained(model, data, LossSettings(loss="mse"), epochs=20, learning_rate=1e-2, schedule="cosine")
    decoder = principal_angles(model.decoder_weight(), data.train_x)
    assert decoder["max_angle_deg"] < 1.0, decoder
    centred = data.train_x.flatten(1).double() / 255.0
    centred -= centred.mean(dim=0)
    singular = torch.linalg.svdvals(centred)
    optimum = float(singular[4:].pow(2).sum()) / centred.numel()
    with torch.no_grad():
        achieved = float(
            (model.reconstruct(model.encode(data.train_x.float() / 255.0)) - data.train_x / 255.0).pow(2).mean()
        )
    # Near the optimum, not at it: the encoder's weights along the noise directions multiply only noise,
    # so the loss pulls on them weakly and 20 epochs leave some of that noise in the code.
    assert achieved < 1.5 * optimum, (achieved, optimum)
    # The reference itself: the SVD's subspace is the generating one, and a random basis is far from it.
    assert np.degrees(scipy.linalg.subspace_angles(basis.T, model.decoder_weight().detach().double().numpy())).max() < 2
    random = principal_angles(torch.randn(64, 4), data.train_x)
    assert random["max_angle_deg"] > 45


def test_training_beats_the_untrained_model_by_far(digits: LoopData) -> None:
    untrained = Trainer(_model(), digits, LossSettings(), epochs=1, batch_size=64, learning_rate=1e-3, seed=0)
    before = untrained.evaluate().loss
    trainer = _trained(_model(), digits, LossSettings())
    after = trainer.evaluate().loss
    assert before > 0.6 and after < 0.5 * before, (before, after)
    assert [row["epoch"] for row in trainer.history] == list(range(1, 7))
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]


def test_the_sparse_code_is_sparser_at_a_similar_loss(digits: LoopData) -> None:
    plain = _trained(_model(), digits, LossSettings()).evaluate()
    sparse = _trained(_model(), digits, LossSettings(l1_weight=1e-3)).evaluate()
    assert sparse.mean_abs_code < 0.5 * plain.mean_abs_code, (sparse, plain)
    assert sparse.loss < 1.15 * plain.loss, (sparse, plain)


def test_denoising_beats_the_noisy_input(digits: LoopData) -> None:
    losses = LossSettings(noise_factor=0.5)
    trainer = _trained(_model(), digits, losses)
    noisy, clean = trainer.test_inputs(0, len(digits.test_x))
    own = float(torch.nn.functional.binary_cross_entropy(noisy.clamp(1e-7, 1 - 1e-7), clean))
    denoised = trainer.evaluate().loss
    assert denoised < 0.5 * own, (denoised, own)
    plain = _trained(_model(), digits, LossSettings()).evaluate().loss
    assert denoised > plain  # measured against the clean image from a noisy one: harder than reconstructing


def test_test_noise_is_the_same_however_it_is_chunked(digits: LoopData) -> None:
    trainer = Trainer(
        _model(), digits, LossSettings(noise_factor=0.5), epochs=1, batch_size=64, learning_rate=1e-3, seed=4
    )
    whole, _ = trainer.test_inputs(0, 500)
    assert torch.equal(trainer.test_inputs(100, 130)[0], whole[100:130])
    assert torch.equal(trainer.test_inputs(490, 500)[0], whole[490:500])
    assert not torch.equal(whole, trainer.test_inputs(0, 500)[1])


def test_tied_weights_reach_a_comparable_loss_with_half_the_weights(digits: LoopData) -> None:
    untied, tied = _model(), _model(tied=True)
    assert 2 * weight_count(tied) == weight_count(untied)
    untied_loss = _trained(untied, digits, LossSettings()).evaluate().loss
    tied_loss = _trained(tied, digits, LossSettings()).evaluate().loss
    assert tied_loss < 1.15 * untied_loss, (tied_loss, untied_loss)


def test_the_2d_projection_is_the_code_or_its_top_principal_components() -> None:
    two = torch.randn(100, 2)
    assert np.allclose(fit_projection(two)(two.numpy()), two.numpy(), atol=1e-6)
    rng = np.random.default_rng(1)
    codes = torch.from_numpy(rng.normal(size=(500, 6)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1, 0.1]))
    projection = fit_projection(codes)
    assert projection.method == "pca" and projection.explained is not None and projection.explained > 0.98
    assert np.allclose(np.abs(projection.components[:, :2]), np.eye(2), atol=0.02)
    assert np.array_equal(projection(codes[:5].numpy()), fit_projection(codes)(codes[:5].numpy()))


@pytest.mark.parametrize("seed", [0, 1])  # both die with a ReLU code
def test_a_2_unit_code_keeps_both_units_alive(digits: LoopData, seed: int) -> None:
    """The "784 dimensions to 2" map: with a ReLU code one of two units often dies (measured: half the
    seeds here, and on full MNIST one unit positive for 0.7% of digits), and the map collapses to a line. The
    default for 2-3 units is a linear code; both units vary across the test digits."""
    spec = parse_spec({"kind": "autoencoder_train", "input": "builtin:mnist", "architecture": "deep", "code_size": 2})
    assert spec.resolved_code_activation == "linear"  # type: ignore[attr-defined]
    torch.manual_seed(seed)
    model = DenseAutoencoder(1, 28, 2, [128, 64], relu_code=False)
    trainer = _trained(model, digits, LossSettings(), epochs=3, seed=seed)
    with torch.no_grad():
        codes = trainer.model.encode(digits.test_x.float() / 255.0)
    spread = codes.std(dim=0)
    assert bool((spread > 0.1 * spread.max()).all()), spread  # neither unit is (nearly) constant
    assert abs(float(torch.corrcoef(codes.T)[0, 1])) < 0.95  # and the map is not a line
