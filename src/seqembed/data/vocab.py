"""Vocabulary: special tokens, frequency-based construction, encode/decode."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<PAD>", "<SOS>", "<EOS>", "<UNK>")


class Vocab:
    """Tokens in index order, with the training frequency of each.

    Indices 0-3 are always ``<PAD> <SOS> <EOS> <UNK>``; the rest are sorted by
    descending frequency, ties broken alphabetically so a build is reproducible.
    """

    def __init__(self, tokens: list[str], freqs: list[int]):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError("a vocabulary must start with the special tokens")
        if len(tokens) != len(freqs):
            raise ValueError("tokens and freqs differ in length")
        self.tokens = list(tokens)
        self.freqs = list(freqs)
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(
        cls,
        sentences: Iterable[list[str]],
        min_freq: int = 1,
        max_size: int = 50_000,
        always: Iterable[str] = (),
    ) -> Vocab:
        """``always``: tokens kept whatever their count (a subword model's
        pieces, frequency 0 if training never used them); ``min_freq`` and
        ``max_size`` apply to the others."""
        counts = Counter(token for sentence in sentences for token in sentence)
        return cls.from_counts(counts, min_freq, max_size, always)

    @classmethod
    def from_counts(
        cls,
        counts: Counter,
        min_freq: int = 1,
        max_size: int = 50_000,
        always: Iterable[str] = (),
    ) -> Vocab:
        """``build`` from token counts already made (``token_cache`` merges
        the counts of its worker processes); ``counts`` is changed."""
        always = set(always)
        for token in always:
            counts.setdefault(token, 0)
        for special in SPECIALS:
            counts.pop(special, None)
        kept = sorted(
            (item for item in counts.items() if item[0] in always),
            key=lambda item: (-item[1], item[0]),
        )
        kept += sorted(
            (i for i in counts.items() if i[1] >= min_freq and i[0] not in always),
            key=lambda item: (-item[1], item[0]),
        )[: max(0, max_size - len(SPECIALS) - len(kept))]
        kept.sort(key=lambda item: (-item[1], item[0]))
        return cls(
            list(SPECIALS) + [token for token, _ in kept],
            [0] * len(SPECIALS) + [count for _, count in kept],
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def encode(self, tokens: list[str]) -> list[int]:
        """Ids; an unknown word is <UNK>, and so is text that merely spells a
        special token: a literal "<EOS>" in a sentence must not end it."""
        ids = (self.index.get(token, UNK) for token in tokens)
        return [i if i >= len(SPECIALS) else UNK for i in ids]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first ``<EOS>``, without ``<PAD>``/``<SOS>``."""
        words = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, SOS):
                words.append(self.tokens[i])
        return words

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "freqs": self.freqs}

    @classmethod
    def from_dict(cls, state: dict) -> Vocab:
        return cls(state["tokens"], state["freqs"])

    def save(self, path: Path) -> None:
        """One ``token<TAB>frequency`` line per index, for people and tools."""
        lines = (f"{token}\t{freq}\n" for token, freq in zip(self.tokens, self.freqs))
        Path(path).write_text("".join(lines), encoding="utf-8")
