"""What an autoencoder training job shows a person: its files (loss curves; test images over their
reconstructions, or noisy / denoised / clean; the 2-D map of the test codes coloured by label; decoder
samples; a linear AE's principal angles to the SVD subspace) and the report's result sections."""

from __future__ import annotations

from typing import Any

import torch

from shared.specs.autoencoder import AutoencoderTrainSpec
from worker.pipelines import autoencoder_pictures as pictures
from worker.pipelines.autoencoder_analysis import Projection, codes_of, decoder_samples
from worker.pipelines.autoencoder_data import AutoencoderData
from worker.pipelines.autoencoder_loop import Trainer
from worker.pipelines.plugin import Section
from worker.pipelines.training_base import TrainingContext

SHOWN = 10  # test images in the reconstruction grid
SAMPLES = 20  # decoder samples
MAP_POINTS = 10_000  # test codes on the map


@torch.no_grad()
def write_training_pictures(
    ctx: TrainingContext,
    spec: AutoencoderTrainSpec,
    trainer: Trainer,
    data: AutoencoderData,
    projection: Projection,
    train_codes: torch.Tensor,
    figures: dict[str, Any],
) -> None:
    model, loop = trainer.model, trainer.data
    model.eval()
    ctx.write_file("curves.png", pictures.curves_png(trainer.history, spec.resolved_loss), "image/png")
    shown = min(SHOWN, len(loop.test_x))
    inputs, clean = trainer.test_inputs(0, shown)
    attributes = loop.test_a[:shown] if loop.test_a is not None else None
    output = model.reconstruct(model.encode(inputs, attributes))
    if spec.denoising:
        rows = [("noisy", inputs), ("denoised", output), ("clean", clean)]
    else:
        rows = [("test image", clean), ("reconstruction", output)]
    ctx.write_file("reconstructions.png", pictures.image_rows_png(rows), "image/png")
    codes = codes_of(model, loop.test_x[:MAP_POINTS], loop.test_a[:MAP_POINTS] if loop.test_a is not None else None)
    points = projection(codes.cpu().numpy())
    labels = data.test.labels[:MAP_POINTS] if data.test.labels is not None else None
    how = "the 2-unit code" if projection.method == "code" else f"PCA of the {model.code_size}-unit codes"
    ctx.write_file(
        "code_map.png", pictures.code_map_png(points, labels, data.classes, f"test codes: {how}"), "image/png"
    )
    if len(train_codes) > 1:
        sampled = decoder_samples(model, train_codes, SAMPLES, spec.seed)
        half = SAMPLES // 2
        label = "decoder samples: codes drawn from a Gaussian fitted to the training codes"
        rows = [(label, sampled[:half]), ("", sampled[half:])]
        ctx.write_file("samples.png", pictures.image_rows_png(rows), "image/png")
    angles = figures.get("principal_angles")
    if angles:
        ctx.write_file("principal_angles.png", pictures.angles_png(angles["angles_deg"]), "image/png")


def training_sections(summary: dict[str, Any]) -> list[Section]:
    loss = summary.get("loss", "bce")
    rows: list[tuple[str, str]] = [
        ("architecture", summary["architecture"] + (", denoising" if summary.get("denoising") else "")),
        (f"test loss ({loss}, against the clean image)", f"{summary['test_loss']:.4f}"),
    ]
    if summary.get("noisy_input_loss") is not None:
        rows.append((f"the noisy input's own {loss}", f"{summary['noisy_input_loss']:.4f}"))
    if summary.get("train_loss") is not None:
        rows.append((f"train loss ({loss}, last epoch)", f"{summary['train_loss']:.4f}"))
    rows += [
        ("epochs", str(summary["epochs"])),
        ("code size", str(summary["code_size"])),
        ("mean |code| (test)", f"{summary['test_mean_abs_code']:.3f}"),
        ("parameters / weights", f"{summary['parameters']:,} / {summary['weights']:,}"),
        ("training / test images", f"{summary['train_items']} / {summary['test_items']}"),
        ("input members skipped", str(summary.get("skipped_items", 0))),
    ]
    if summary.get("test_attribute_loss") is not None:
        rows.append(("test attribute loss", f"{summary['test_attribute_loss']:.4f}"))
    if summary.get("test_attribute_accuracy") is not None:
        rows.append(("class decoded from the joint code (test)", f"{summary['test_attribute_accuracy']:.2%}"))
    mapped = summary.get("map") or {}
    if mapped.get("method") == "pca" and mapped.get("explained_variance") is not None:
        rows.append(("2-D map", f"PCA of the codes, {mapped['explained_variance']:.1%} of their variance"))
    out = [Section("Result", rows=tuple(rows))]
    angles = summary.get("principal_angles")
    if angles:
        text = (
            f"Principal angles between the decoder's column space and the top-{angles['k']} right singular "
            f"vectors of the same centred training data (torch.linalg.svd, {angles['rows']} images): largest "
            f"{angles['max_angle_deg']:.3f}°."
        )
        table = (("rank", "angle (degrees)"), *((str(i + 1), f"{a:.4f}") for i, a in enumerate(angles["angles_deg"])))
        out.append(Section("Linear autoencoder against SVD", text=text, table=table))
    return out
