"""Caption quality over a corpus: BLEU-1..4 and CIDEr-D through the COCO caption evaluation code
(``pycocoevalcap``; its BLEU and CIDEr are pure Python, unlike METEOR and SPICE, which need Java and are
not computed). BLEU is corpus-level (clipped n-gram counts and lengths summed over the corpus, the
closest reference length for the brevity penalty), as the paper and the usual tutorial report it.

Both sides are compared as token lists, tokenised the way the model was trained (``tokenize``), so a
hypothesis and its references agree on case and punctuation."""

from __future__ import annotations

from collections.abc import Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "cider")


def corpus_scores(references: Sequence[Sequence[list[str]]], hypotheses: Sequence[list[str]]) -> dict[str, float]:
    """references[i]: the reference token lists of item i (at least one); hypotheses[i]: its caption's tokens.
    Returns BLEU-1..4 and CIDEr-D (CIDEr's document frequencies come from these references, so it is only
    comparable across corpora of similar size), or an empty dict for an empty corpus."""
    if len(references) != len(hypotheses):
        raise ValueError("one list of references per hypothesis")
    pairs = [(refs, hyp) for refs, hyp in zip(references, hypotheses, strict=True) if refs]
    if not pairs:
        return {}
    gts = {i: [" ".join(ref) for ref in refs] for i, (refs, _) in enumerate(pairs)}
    res = {i: [" ".join(hyp)] for i, (_, hyp) in enumerate(pairs)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    scores = {f"bleu{n + 1}": float(value) for n, value in enumerate(bleu)}
    scores["cider"] = float(cider)
    return {name: round(value, 6) for name, value in scores.items()}


def bleu4(references: Sequence[Sequence[list[str]]], hypotheses: Sequence[list[str]]) -> float:
    """Corpus BLEU-4 alone (validation during training)."""
    pairs = [(refs, hyp) for refs, hyp in zip(references, hypotheses, strict=True) if refs]
    if not pairs:
        return 0.0
    gts = {i: [" ".join(ref) for ref in refs] for i, (refs, _) in enumerate(pairs)}
    res = {i: [" ".join(hyp)] for i, (_, hyp) in enumerate(pairs)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return float(bleu[3])
