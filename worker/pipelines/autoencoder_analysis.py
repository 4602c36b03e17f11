"""What a trained autoencoder is measured and drawn with: its codes over a data set, the 2-D projection
of codes (fitted once, on the training codes, and stored with the model so that an applied archive's map
never depends on which images share a batch), a Gaussian fitted to the training codes to sample the
decoder from, and the principal angles between a linear AE's decoder and the data's top singular vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import torch

from worker.nets.autoencoders import Autoencoder


@torch.no_grad()
def codes_of(
    model: Autoencoder, images: torch.Tensor, attributes: torch.Tensor | None = None, chunk: int = 1024
) -> torch.Tensor:
    """(N, D) float32 codes of uint8 images (N, C, S, S), in eval mode."""
    out = []
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk].float().div_(255.0)
        part = attributes[start : start + chunk] if attributes is not None else None
        out.append(model.encode(batch, part).float())
    return torch.cat(out) if out else torch.zeros(0, model.code_size)


@dataclass(frozen=True)
class Projection:
    """code -> 2-D: (code - mean) @ components.T. A 2-unit code is its own map (mean 0, identity)."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (2, D)
    method: str  # "code" or "pca"
    explained: float | None = None  # share of the codes' variance the two components keep

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        return ((np.asarray(codes, dtype=np.float64) - self.mean) @ self.components.T).astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "mean": [float(v) for v in self.mean],
            "components": [[float(v) for v in row] for row in self.components],
            "explained_variance": self.explained,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Projection:
        return cls(
            np.asarray(config["mean"], dtype=np.float64),
            np.asarray(config["components"], dtype=np.float64),
            str(config["method"]),
            config.get("explained_variance"),
        )


def fit_projection(codes: torch.Tensor) -> Projection:
    """The code itself for a 2-unit code; otherwise the top two principal components of the training
    codes (eigenvectors of their covariance, in float64; each component's sign fixed so that its largest
    entry is positive, so the same codes always give the same map)."""
    values = codes.double().cpu()
    size = values.shape[1]
    if size == 2:
        return Projection(np.zeros(2), np.eye(2), "code")
    mean = values.mean(dim=0)
    centred = values - mean
    covariance = centred.T @ centred / max(len(values) - 1, 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    top = eigenvectors[:, [-1, -2]].T.clone()
    for row in top:
        if row[row.abs().argmax()] < 0:
            row.neg_()
    total = float(eigenvalues.clamp_min(0).sum())
    explained = float(eigenvalues[-2:].clamp_min(0).sum()) / total if total > 0 else None
    return Projection(mean.numpy(), top.numpy(), "pca", explained)


@torch.no_grad()
def decoder_samples(model: Autoencoder, codes: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Images decoded from codes drawn from a Gaussian fitted to the training codes (full covariance);
    a ReLU code never goes below zero, so draws are clamped there."""
    values = codes.double()
    mean = values.mean(dim=0)
    centred = values - mean
    covariance = centred.T @ centred / max(len(values) - 1, 1)
    jitter = 1e-6 * float(covariance.diagonal().mean().clamp_min(1e-12))
    factor = torch.linalg.cholesky(covariance + jitter * torch.eye(len(mean), dtype=torch.float64, device=mean.device))
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randn(count, len(mean), generator=generator, dtype=torch.float64).to(mean.device)
    sampled = (mean + draws @ factor.T).float()
    if model.relu_code:
        sampled = sampled.clamp_min(0.0)
    return model.reconstruct(sampled)


def pixel_mean(images: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The mean image in [0, 1] of uint8 images (N, C, S, S), summed in float64 chunk by chunk (a large
    archive as one float tensor would not fit in memory)."""
    total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
    for start in range(0, len(images), chunk):
        total += images[start : start + chunk].double().sum(dim=0)
    return (total / max(len(images), 1) / 255.0).float()


SVD_ELEMENTS = 60_000 * 784  # all of MNIST; wider images are compared on fewer rows


def principal_angles(basis: torch.Tensor, images: torch.Tensor) -> dict[str, Any]:
    """Angles (degrees, largest first) between the column space of ``basis`` (d, k) and the top-k right
    singular vectors of the centred data (torch.linalg.svd in float64), on as many images as keep the
    data matrix at MNIST's size."""
    width = int(np.prod(images.shape[1:]))
    rows = min(len(images), max(SVD_ELEMENTS // width, 2 * basis.shape[1]))
    data = images[:rows].reshape(rows, -1).double().div_(255.0)
    centred = data - data.mean(dim=0)
    k = basis.shape[1]
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    top = vh[:k].T.cpu().numpy()
    angles = np.degrees(scipy.linalg.subspace_angles(basis.detach().double().cpu().numpy(), top))
    return {
        "k": int(k),
        "rows": int(len(data)),
        "angles_deg": [round(float(a), 4) for a in angles],
        "max_angle_deg": round(float(angles.max()), 4),
        "singular_values": [round(float(s), 4) for s in singular[: k + 1].tolist()],
    }
