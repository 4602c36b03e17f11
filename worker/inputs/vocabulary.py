"""Words of captions: tokenisation, and a vocabulary with a minimum count and ``<unk>`` that turns token
lists into index sequences (``<start>`` ... ``<end>``) and back."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIAL = (PAD, START, END, UNK)

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
"""Runs of letters and digits, with inner apostrophes ("man's"): what the usual caption preprocessing
(lower-case, punctuation dropped) leaves of a sentence."""


def tokenize(text: str, *, lowercase: bool = True, strip_punctuation: bool = True) -> list[str]:
    if lowercase:
        text = text.lower()
    if strip_punctuation:
        return _WORD.findall(text)
    return text.split()


class Vocabulary:
    """Index 0 is ``<pad>``, then ``<start>``, ``<end>``, ``<unk>``, then words by falling count (ties in
    alphabetical order, so the same captions always give the same indices)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = list(words)
        if tuple(self.words[:4]) != SPECIAL:
            raise ValueError(f"a vocabulary starts with {SPECIAL}")
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("vocabulary words must be distinct")

    @classmethod
    def build(cls, captions: Iterable[list[str]], min_count: int) -> Vocabulary:
        counts = Counter(token for tokens in captions for token in tokens)
        kept = sorted(
            (w for w, n in counts.items() if n >= min_count and w not in SPECIAL), key=lambda w: (-counts[w], w)
        )
        return cls([*SPECIAL, *kept])

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad(self) -> int:
        return 0

    @property
    def start(self) -> int:
        return 1

    @property
    def end(self) -> int:
        return 2

    @property
    def unk(self) -> int:
        return 3

    def encode(self, tokens: list[str]) -> list[int]:
        """``<start>`` w1 … wn ``<end>``; unknown words become ``<unk>``."""
        return [self.start, *(self.index.get(t, self.unk) for t in tokens), self.end]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to the first ``<end>``, without ``<start>`` or padding."""
        out = []
        for i in ids:
            if i == self.end:
                break
            if i not in (self.pad, self.start):
                out.append(self.words[i])
        return out
