"""The ``captioning_train`` kind: Show, Attend and Tell (Xu et al. 2015) on a caption set. Its data is
``captioning_data``, its loop ``captioning_loop``; this module is its place in the training contract, the
test-split evaluation, the model it leaves (referable as ``{"job": ID}``) and its report."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from shared.errors import InvalidInput
from shared.specs.captioning import CaptioningTrainSpec
from worker.inputs.caption_set import CaptionSet, generated_set, read_set
from worker.nets.caption_decoder import AttentionDecoder
from worker.nets.caption_search import Decoded
from worker.nets.captioner import Captioner, build_captioner
from worker.pictures.attention import attention_strip, stack
from worker.pictures.images import encode_png
from worker.pictures.plots import finish_png, new_figure
from worker.pipelines.caption_attention import HitTotals, object_word_hits
from worker.pipelines.caption_metrics import corpus_scores
from worker.pipelines.captioning_data import Prepared, data_key, describe, encoder_layer, make_encoder, prepare
from worker.pipelines.captioning_loop import CaptionTrainer
from worker.pipelines.captioning_report import training_sections
from worker.pipelines.plugin import ReportHooks, TrainingPlugin
from worker.pipelines.training_base import EpochLoopPipeline, TrainingContext


class CaptioningTraining(EpochLoopPipeline[CaptionTrainer]):
    spec: CaptioningTrainSpec

    def __init__(self, spec: CaptioningTrainSpec, ctx: TrainingContext) -> None:
        super().__init__(spec, ctx)
        self.data: Prepared | None = None
        self.trainer: CaptionTrainer | None = None
        self.test: Decoded | None = None

    def load_data(self) -> None:
        self.data = self.ctx.cached(data_key(self.spec), self._prepare)

    def _prepare(self) -> Prepared:
        spec = self.spec
        weights = self.ctx.weights(spec.encoder.weights, spec.encoder.arch or "") if spec.encoder.weights else None
        try:
            encoder = make_encoder(spec, weights)
        except (RuntimeError, ValueError) as exc:
            raise InvalidInput(f"encoder {spec.encoder.arch} at {encoder_layer(spec)!r}: {str(exc)[:300]}") from exc
        try:
            return prepare(spec, self._caption_set(), encoder, self.ctx.device)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc

    def _caption_set(self) -> CaptionSet:
        spec = self.spec
        if spec.input == "builtin:captioned_shapes":
            counts = {"train": spec.train_items, "val": spec.val_items, "test": spec.test_items}
            return generated_set(counts, spec.image_size, spec.encoder.input_size, spec.seed)
        return read_set(
            self.ctx.members(spec.input),
            input_size=spec.encoder.input_size,
            max_items=spec.max_items,
            max_pixels=self.ctx.limits.max_image_pixels,
            max_bytes=self.ctx.limits.max_item_bytes,
            split=spec.split,
            val_fraction=spec.val_fraction,
            test_fraction=spec.test_fraction,
            seed=spec.seed,
        )

    def build(self, *, resuming: bool) -> None:
        """The decoder, seeded from the spec (without touching the process's global generator); the
        encoder is the data's (frozen), or a trainable copy of it when fine-tuning."""
        spec, data = self.spec, self._data
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed + 1)
            decoder = AttentionDecoder(
                len(data.vocabulary),
                data.feature_dim,
                spec.embed_dim,
                spec.attention_dim,
                spec.decoder_dim,
                spec.dropout,
                spec.gate,
                spec.initial_state,
                spec.query,
            )
        encoder = data.encoder
        if spec.fine_tune:
            encoder = copy.deepcopy(encoder).requires_grad_(True)
        self.trainer = CaptionTrainer(spec, data, encoder, decoder.to(self.ctx.device))

    @property
    def _data(self) -> Prepared:
        if self.data is None:
            raise RuntimeError("load_data() first")
        return self.data

    def evaluate(self) -> dict[str, Any]:
        """The best validation epoch's model on the test split: beam search, BLEU-1..4, CIDEr and, where
        the objects' boxes are known, the share of object words whose attention peak is in the box."""
        trainer, data, spec = self._trainer, self._data, self.spec
        trainer.use_best()
        test = data.split_images["test"]
        self.test = trainer.decode(test, beam=spec.beam_size)
        words = [data.vocabulary.decode(t) for t in self.test.tokens]
        figures: dict[str, Any] = {
            "test": corpus_scores([data.references[i] for i in test], words),
            "beam_size": spec.beam_size,
            "attention": spec.attention,
            "epochs": trainer.epoch,
            "best_epoch": trainer.best_epoch,
            "best_val_bleu4": round(trainer.best_bleu4, 6),
            "stopped_early": trainer.stopped,
            **describe(data),
        }
        objects = data.source.objects
        if objects is not None:
            totals = HitTotals()
            height, width = data.grid
            centres = data.encoder.cell_centres(spec.encoder.input_size)
            for i, tokens, alphas in zip(test, words, self.test.alphas, strict=True):
                grid_maps = alphas.reshape(len(tokens), height, width).numpy()
                totals.add(object_word_hits(tokens, grid_maps, objects[i], data.source.sizes[i], centres))
            figures["test"].update(totals.result() or {})
        figures["examples"] = [
            {"caption": " ".join(words[k]), "references": data.source.captions[i]}
            for k, i in enumerate(test[: len(data.examples)])
        ]
        return figures

    def write_outputs(self, figures: dict[str, Any]) -> None:
        trainer, data, spec = self._trainer, self._data, self.spec
        trainer.use_best()
        model = Captioner(trainer.encoder, trainer.decoder, spec.attention == "hard")
        self.ctx.save_model(model.state_dict(), model_config(spec, data))
        self.ctx.write_file("curves.png", curves_png(trainer.history), "image/png")
        if self.test is not None and data.examples:
            self.ctx.write_file("attention_examples.png", self._examples_png(self.test), "image/png")

    def _examples_png(self, decoded: Decoded) -> bytes:
        data = self._data
        height, width = data.grid
        centres = data.encoder.cell_centres(self.spec.encoder.input_size)
        strips = []
        for k, image in enumerate(data.examples.values()):
            words = data.vocabulary.decode(decoded.tokens[k])
            maps = decoded.alphas[k].reshape(len(words), height, width).numpy()
            strips.append(attention_strip(image, words, maps, centres, panel=112, columns=10))
        return encode_png(stack(strips))


def model_config(spec: CaptioningTrainSpec, data: Prepared) -> dict[str, Any]:
    """Everything a later job needs to rebuild and feed the captioner, and to read its output."""
    return {
        "vocabulary": list(data.vocabulary.words),
        "attention": spec.attention,
        "max_length": spec.max_length,
        "tokenizer": {"lowercase": spec.lowercase, "strip_punctuation": spec.strip_punctuation},
        "grid": list(data.grid),
        "encoder": {
            "arch": spec.encoder.arch,
            "weights": spec.encoder.weights,
            "layer": encoder_layer(spec),
            "grid": spec.encoder.grid,
            "coordinates": spec.coordinates,
            "input_size": spec.encoder.input_size,
            "preprocessing": spec.encoder.preprocessing,
            "fine_tuned": spec.fine_tune,
        },
        "decoder": {
            "feature_dim": data.feature_dim,
            "embed_dim": spec.embed_dim,
            "attention_dim": spec.attention_dim,
            "decoder_dim": spec.decoder_dim,
            "dropout": spec.dropout,
            "gate": spec.gate,
            "initial_state": spec.initial_state,
            "query": spec.query,
        },
        "trained_on": spec.input,
        # The side of the generated scenes it learnt from: applied to generated scenes, it must see that size.
        "scene_size": spec.image_size if spec.input == "builtin:captioned_shapes" else None,
    }


def load_model(config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> nn.Module:
    module = build_captioner(config)
    module.load_state_dict(tensors, strict=True)
    return module


def curves_png(history: list[dict[str, float]]) -> bytes:
    epochs = [h["epoch"] for h in history]
    figure, axes = new_figure(2, (9, 3.4))
    axes[0].plot(epochs, [h["train_cross_entropy"] for h in history], label="cross-entropy")
    axes[0].plot(epochs, [h["train_penalty"] for h in history], label="doubly stochastic penalty")
    if all("train_attention_entropy" in h for h in history):  # (not in models trained before it was kept)
        entropy = [h["train_attention_entropy"] for h in history]
        axes[0].plot(epochs, entropy, label="attention entropy per word (nats)")
    axes[0].set(xlabel="epoch", title="training loss")
    axes[1].plot(epochs, [h["val_bleu4"] for h in history], label="validation BLEU-4 (greedy)")
    axes[1].set(xlabel="epoch", ylim=(0, 1.01), title="BLEU-4")
    return finish_png(figure, axes)


PLUGIN = TrainingPlugin(
    pipeline=CaptioningTraining, load_model=load_model, report=ReportHooks(sections=training_sections)
)
