"""Saliency throughput against the anchors users have today, in one run.

- gradient saliency: Captum ``Saliency`` at fp32 (the anchor) vs Fovea's compute path (one backward
  pass per batch; fp16 autocast with the first convolution in fp32 and channels_last on CUDA) vs Fovea end to end (JPEG bytes -> decoded -> maps -> encoded
  PNG heatmap and JPEG overlay in host memory);
- spectral residual: OpenCV contrib on one CPU core (the anchor) vs Fovea's batched torch version.

On a CUDA machine it runs the GPU configuration (ResNet-50, 224 px, batch 64 for Captum, 256 for
Fovea); on a CPU-only machine a small one (ResNet-18, 112 px, small batches) and says so. Weights are
random: timings only. One JSON line per figure.

    .venv/bin/python bench/saliency_throughput.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torchvision
from captum.attr import Saliency
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.inputs.decode import decode_image  # noqa: E402
from worker.nets.zoo import preprocess, ready_for_inference  # noqa: E402
from worker.pictures import images as render  # noqa: E402
from worker.saliency.gradient import gradient_saliency  # noqa: E402
from worker.saliency.spectral import spectral_residual  # noqa: E402
from worker.saliency.spectral_torch import spectral_residual_batch  # noqa: E402


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


def rate(work: Any, items_per_call: int, seconds: float, sync: Any) -> float:
    work()  # warm-up
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        work()
        calls += 1
    sync()
    return calls * items_per_call / (time.perf_counter() - start)


def jpegs(count: int, side: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="time per figure")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    arch, size, anchor_batch, batch = ("resnet50", 224, 64, 256) if cuda else ("resnet18", 112, 8, 16)
    config = {"device": torch.cuda.get_device_name() if cuda else "cpu", "arch": arch, "size": size}
    if not cuda:
        emit(note="no CUDA device: small CPU configuration, not comparable with GPU figures", **config)
    model = torchvision.models.get_model(arch, weights=None).eval().to(device)
    x_anchor = torch.randn(anchor_batch, 3, size, size, device=device)
    anchor = rate(
        lambda: Saliency(model).attribute(x_anchor.requires_grad_(), target=0, abs=True),
        anchor_batch,
        args.seconds,
        sync,
    )
    emit(figure="gradient_anchor_captum_fp32", images_per_s=round(anchor, 1), batch=anchor_batch, **config)

    fast = ready_for_inference(model, device)  # as the worker's model cache prepares it
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)  # as zoo.preprocess hands batches over on CUDA
    precision = "fp16" if cuda else "fp32"  # fp16 keeps maps at r >= 0.99 of fp32 (tests); CPU fp16 is slow
    compute = rate(lambda: gradient_saliency(fast, x, precision=precision), batch, args.seconds, sync)
    emit(
        figure="gradient_fovea_compute",
        images_per_s=round(compute, 1),
        batch=batch,
        ratio_to_anchor=round(compute / anchor, 2),
        **config,
    )

    data = jpegs(batch, 2 * size)

    def end_to_end() -> None:
        images = [decode_image(b, max_pixels=10**8, max_bytes=10**8) for b in data]
        inputs = preprocess([torch.from_numpy(i).permute(2, 0, 1) for i in images], size, "imagenet", device)
        maps = gradient_saliency(fast, inputs, precision=precision).maps.cpu().numpy()
        for image, saliency in zip(images, maps, strict=True):
            full = render.normalise(render.resize_map(saliency, image.shape[1], image.shape[0]), 99.5)
            heat = render.colorize(full, "inferno")
            render.encode_png(heat)
            render.encode_jpeg(render.overlay(image, heat, 0.7, full))

    e2e = rate(end_to_end, batch, args.seconds, sync)
    emit(
        figure="gradient_fovea_end_to_end",
        images_per_s=round(e2e, 1),
        batch=batch,
        ratio_to_anchor=round(e2e / anchor, 2),
        note="PIL decode and CPU encoding in this process",
        **config,
    )

    photos = [
        np.ascontiguousarray(np.random.default_rng(i).integers(0, 255, (480, 640, 3), dtype=np.uint8))
        for i in range(64)
    ]
    cv2.setNumThreads(1)
    opencv = rate(lambda: [spectral_residual(p) for p in photos[:8]], 8, args.seconds, lambda: None)
    emit(figure="spectral_anchor_opencv_one_core", images_per_s=round(opencv, 1), size="640x480")
    tensors = [torch.from_numpy(p).permute(2, 0, 1).to(device) for p in photos]
    batched = rate(lambda: spectral_residual_batch(tensors, device), len(tensors), args.seconds, sync)
    emit(
        figure="spectral_fovea_batched_torch",
        images_per_s=round(batched, 1),
        size="640x480",
        device=str(device),
        ratio_to_anchor=round(batched / opencv, 2),
    )


if __name__ == "__main__":
    main()
