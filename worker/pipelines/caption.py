"""The ``caption`` kind: every image of an input captioned by a trained captioner (``{"job": ID}``), by beam
search batched over the images, with the caption's log-probability and the image with each generated
word's attention map over it. Where the input carries reference captions (a COCO JSON, Flickr8k token
file or WebDataset ``KEY.txt`` / ``KEY.json`` beside the images, read while the job is planned), the job's
summary scores the captions against them (corpus BLEU-1..4, CIDEr-D); on ``builtin:captioned_shapes`` also
whether each object word's attention peak falls inside that object's box."""

from __future__ import annotations

from typing import Any

import torch

from shared.errors import InvalidInput
from shared.specs.captioning import CaptionSpec
from worker.inputs.builtin import parse_builtin
from worker.inputs.captions import CaptionFiles
from worker.inputs.vocabulary import Vocabulary, tokenize
from worker.nets.caption_search import beam_search
from worker.nets.captioner import Captioner
from worker.nets.zoo import preprocess
from worker.pictures.attention import attention_strip
from worker.pictures.images import encode_npy, encode_png
from worker.pipelines.base import Item, MapPipeline, Outcome, PipelineContext
from worker.pipelines.caption_attention import HitTotals, object_word_hits
from worker.pipelines.caption_metrics import corpus_scores
from worker.pipelines.captioning_report import caption_sections
from worker.pipelines.plugin import JobFiles, MapPlugin, ReportHooks


class CaptionPipeline(MapPipeline):
    spec: CaptionSpec

    def __init__(self, spec: CaptionSpec, ctx: PipelineContext) -> None:
        super().__init__(spec, ctx)
        self.batch_size = spec.batch_size

    def check(self) -> None:
        _, config, _ = self._model()  # a job that trained no captioner fails here, naming what it trained
        trained = config.get("scene_size")
        if self.spec.input.startswith("builtin:captioned_shapes") and trained is not None:
            scenes = parse_builtin(self.spec.input)
            # Scenes drawn at another size than the training scenes differ in more than scale (strokes one
            # pixel wide, anti-aliased edges), so the default size must not silently differ from the model's;
            # a size named in the input is taken as asked (a robustness check).
            if scenes.size is None and scenes.side != int(trained):
                asked = self.spec.input + ("&" if "?" in self.spec.input else "?") + f"size={trained}"
                raise InvalidInput(
                    f"the captioner of job {self.spec.model.job} was trained on {trained}-px scenes and "
                    f"{self.spec.input} draws {scenes.side}-px ones: use input {asked}"
                )

    def _model(self) -> tuple[Captioner, dict[str, Any], Vocabulary]:
        trained = self.ctx.trained(self.spec.model.job, "captioner")
        if not isinstance(trained.module, Captioner):
            raise TypeError(f"job {self.spec.model.job} left a {type(trained.module).__name__}, not a Captioner")
        return trained.module, trained.config, Vocabulary(trained.config["vocabulary"])

    def run_batch(self, items: list[Item]) -> list[Outcome]:
        spec = self.spec
        captioner, config, vocabulary = self._model()
        encoder = config["encoder"]
        tensors = [torch.from_numpy(item.image).permute(2, 0, 1) for item in items]
        inputs = preprocess(tensors, int(encoder["input_size"]), str(encoder["preprocessing"]), self.ctx.device)
        with torch.no_grad():
            features, (height, width) = captioner.annotations(inputs)
        decoded = beam_search(
            captioner.decoder,
            features,
            start=vocabulary.start,
            end=vocabulary.end,
            beam_size=spec.beam_size,
            max_length=spec.max_length or int(config["max_length"]),
            hard=captioner.hard,
        )
        centres = captioner.encoder.cell_centres(int(encoder["input_size"]))
        outcomes = []
        for k, item in enumerate(items):
            words = vocabulary.decode(decoded.tokens[k])
            maps = decoded.alphas[k].reshape(len(words), height, width).numpy()
            outcome = Outcome(data={"caption": " ".join(words), "log_prob": round(decoded.log_probs[k], 6)})
            if spec.attention_figure:
                strip = attention_strip(item.image, words, maps, centres, panel=spec.panel_size, columns=spec.columns)
                outcome.outputs["attention"] = self.ctx.write(item, "attention.png", encode_png(strip), "image/png")
            if spec.raw_maps:
                raw = encode_npy(maps.astype("float16"))
                outcome.outputs["maps"] = self.ctx.write(item, "attention_maps.npy", raw, "application/x-npy")
            truth = item.truth or {}
            if truth.get("references"):
                outcome.data["references"] = list(truth["references"])
                outcome.data["tokenizer"] = dict(config["tokenizer"])
            if truth.get("objects"):
                size = (item.image.shape[1], item.image.shape[0])
                outcome.data["attention_hits"] = object_word_hits(words, maps, truth["objects"], size, centres)
            outcomes.append(outcome)
        return outcomes


class CaptionSummary:
    """Corpus scores over the job's items with references (at most ``metrics_max_items``, in index order:
    corpus BLEU and CIDEr need every caption at once), and the attention-in-box totals."""

    def __init__(self, spec: CaptionSpec) -> None:
        self.limit = spec.metrics_max_items
        self.references: list[list[list[str]]] = []
        self.hypotheses: list[list[str]] = []
        self.hits = HitTotals()

    def add(self, item: dict[str, Any]) -> None:
        if item.get("status") != "ok":
            return
        if item.get("references") and len(self.hypotheses) < self.limit:
            words = item.get("tokenizer") or {}
            self.references.append([tokenize(text, **words) for text in item["references"]])
            self.hypotheses.append(str(item["caption"]).split())
        if item.get("attention_hits"):
            self.hits.add(item["attention_hits"])

    def finish(self, _files: JobFiles) -> dict[str, Any]:
        if not self.hypotheses:
            return {"references": None}
        scores: dict[str, Any] = {"items": len(self.hypotheses), **corpus_scores(self.references, self.hypotheses)}
        scores.update(self.hits.result() or {})
        return {"references": scores}


def caption(item: dict[str, Any]) -> list[str]:
    lines = [f"“{item.get('caption', '')}”", f"log p = {item.get('log_prob', 0.0):.2f}"]
    references = item.get("references") or []
    if references:
        lines.append(f"reference: {references[0]}")
    return lines


def sidecars(_spec: CaptionSpec) -> CaptionFiles:
    return CaptionFiles()


PLUGIN = MapPlugin(
    pipeline=CaptionPipeline,
    report=ReportHooks(
        preview=("attention",), preview_width=960, caption=caption, summary=CaptionSummary, sections=caption_sections
    ),
    sidecars=sidecars,
)
