"""Image parameterisations: what the optimiser actually changes. Each gives a batch of RGB images in
[0, 1], shape (B, 3, H, W), as a differentiable function of its parameters.

- ``PixelImage``: the pixels themselves (Simonyan's class model starts from the zero image, i.e. the
  image whose model input is zero, and ascends the plain gradient).
- ``FFTImage``: Lucid/Lucent's decorrelated parameterisation: a spectrum scaled by 1/frequency, inverse
  real FFT (orthonormal) divided by 4, colours decorrelated by the ImageNet colour matrix, then a
  sigmoid. Optimising here whitens the gradient, which is why feature visualisations look natural.
"""

from __future__ import annotations

import torch

# Square root of ImageNet's colour correlation (Lucid), normalised by its largest column norm.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float64)
COLOR_DECORRELATION = (_COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()).float()
_FFT_MAGIC = 4.0  # Lucid's constant: a larger value reduces saturation


class PixelImage:
    def __init__(self, initial: torch.Tensor) -> None:
        """``initial``: (B, 3, H, W) in [0, 1]; optimised as is (values may leave [0, 1] during ascent)."""
        self.pixels = initial.detach().clone().requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.pixels]

    def image(self) -> torch.Tensor:
        return self.pixels

    @torch.no_grad()
    def clamp_(self) -> None:
        self.pixels.clamp_(0.0, 1.0)


def rfft2d_freqs(height: int, width: int) -> torch.Tensor:
    """|frequency| of each coefficient of a real 2-D FFT (Lucid keeps one extra column for odd widths)."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    columns = width // 2 + 2 if width % 2 == 1 else width // 2 + 1
    fx = torch.fft.fftfreq(width, dtype=torch.float64)[:columns]
    return torch.sqrt(fx * fx + fy * fy)


class FFTImage:
    def __init__(
        self,
        batch: int,
        height: int,
        width: int,
        *,
        generator: torch.Generator | list[torch.Generator],
        device: torch.device,
        sd: float = 0.01,
        decay_power: float = 1.0,
        decorrelate: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.height, self.width, self.decorrelate = height, width, decorrelate
        freqs = rfft2d_freqs(height, width)
        scale = 1.0 / torch.clamp(freqs, min=1.0 / max(width, height)) ** decay_power
        self.scale = scale.to(device=device, dtype=dtype)[None, None, :, :, None]
        # Drawn on CPU generators, then moved: the same seed gives the same start on every device. With
        # one generator per image, an image's start does not depend on the batch it is part of.
        shape = (3, *freqs.shape, 2)
        if isinstance(generator, list):
            if len(generator) != batch:
                raise ValueError(f"{len(generator)} generators for a batch of {batch}")
            spectrum = torch.stack([torch.randn(shape, generator=g) for g in generator]) * sd
        else:
            spectrum = torch.randn((batch, *shape), generator=generator) * sd
        self.spectrum = spectrum.to(device=device, dtype=dtype).requires_grad_(True)
        self._colors = COLOR_DECORRELATION.to(device=device, dtype=dtype)

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def image(self) -> torch.Tensor:
        scaled = torch.view_as_complex((self.scale * self.spectrum).contiguous())
        spatial = torch.fft.irfftn(scaled, s=(self.height, self.width), norm="ortho") / _FFT_MAGIC
        if self.decorrelate:
            spatial = torch.einsum("bchw,dc->bdhw", spatial, self._colors)
        return torch.sigmoid(spatial)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Nothing to do: the sigmoid keeps every value in (0, 1)."""

    @classmethod
    def from_image(cls, image: torch.Tensor, *, decorrelate: bool = True, decay_power: float = 1.0) -> FFTImage:
        """The parameters whose image is ``image`` ((B, 3, H, W) in (0, 1)): the inverse of every step."""
        batch, _, height, width = image.shape
        param = cls(
            batch,
            height,
            width,
            generator=torch.Generator().manual_seed(0),
            device=image.device,
            decay_power=decay_power,
            decorrelate=decorrelate,
        )
        eps = 1e-6
        logits = torch.logit(image.double().clamp(eps, 1 - eps))
        if decorrelate:
            inverse = torch.linalg.inv(COLOR_DECORRELATION.double().to(image.device))
            logits = torch.einsum("bdhw,cd->bchw", logits, inverse)
        spectrum = torch.fft.rfftn(logits * _FFT_MAGIC, s=(height, width), norm="ortho")
        columns = param.scale.shape[3]
        if spectrum.shape[-1] < columns:  # odd width: Lucid's extra column is never read back
            spectrum = torch.nn.functional.pad(spectrum, (0, columns - spectrum.shape[-1]))
        real = torch.view_as_real(spectrum).float() / param.scale
        with torch.no_grad():
            param.spectrum.copy_(real)
        return param


def zero_input_image(
    batch: int, height: int, width: int, zero_input_colour: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """A batch of the flat image whose model input is zero (Simonyan's starting point)."""
    colour = zero_input_colour.to(device=device, dtype=torch.float32).reshape(1, 3, 1, 1)
    return colour.expand(batch, 3, height, width).clone()
