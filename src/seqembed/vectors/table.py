"""An embedding table as plain data.

``EmbeddingTable`` holds tokens, token -> row index, a (n_words, dim) float32
matrix, each token's training frequency, and cached norms (gensim's
KeyedVectors, without the sixty methods). The computations over all pairs of
rows live in ``seqembed.analysis.similarity``; the tables of a checkpoint come
from ``seqembed.nmt.checkpoint.load_tables``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError
from seqembed.textfile import read_text


@dataclass
class EmbeddingTable:
    """Rows of ``vectors`` are the embeddings of ``tokens`` (same order)."""

    tokens: list[str]
    vectors: np.ndarray  # (n_words, dim) float32
    freqs: np.ndarray  # (n_words,) training frequency (0 for special tokens)
    index: dict[str, int] = field(init=False, repr=False)
    _norms: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        self.freqs = np.asarray(self.freqs, dtype=np.int64)
        if self.vectors.ndim != 2 or len(self.tokens) != len(self.vectors):
            raise ValueError("vectors must be (len(tokens), dim)")
        if len(self.freqs) != len(self.tokens):
            raise ValueError("freqs must have one entry per token")
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def norms(self) -> np.ndarray:
        if self._norms is None:
            self._norms = np.linalg.norm(self.vectors, axis=1)
        return self._norms

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1 (a zero row stays zero)."""
        norms = self.norms[:, None]
        return self.vectors / np.where(norms > 0, norms, 1.0)

    def vector(self, token: str) -> np.ndarray:
        return self.vectors[self.index[token]]

    def similarity(self, a: str, b: str) -> float:
        return cosine(self.vector(a), self.vector(b))

    def select(self, tokens: list[str]) -> EmbeddingTable:
        """The sub-table of these tokens, in this order."""
        rows = [self.index[token] for token in tokens]
        return EmbeddingTable(list(tokens), self.vectors[rows], self.freqs[rows])

    def words(
        self,
        min_freq: int = 1,
        include_specials: bool = False,
        only: list[str] | None = None,
    ) -> EmbeddingTable:
        """The analysed sub-table: ``only`` these words (those in the table), or
        every word seen at least ``min_freq`` times in training."""
        if only is not None:
            chosen = [t for t in dict.fromkeys(only) if t in self.index]
        else:
            chosen = [
                t
                for t, f in zip(self.tokens, self.freqs)
                if f >= min_freq or (include_specials and t in SPECIALS)
            ]
        if not include_specials:
            chosen = [t for t in chosen if t not in SPECIALS]
        return self.select(chosen)

    def most_similar(self, token: str, k: int = 10) -> list[tuple[str, float]]:
        """The k nearest other rows by cosine, best first."""
        unit = self.unit_vectors()
        scores = unit @ unit[self.index[token]]
        scores[self.index[token]] = -np.inf
        k = min(k, len(self) - 1)
        best = np.argpartition(-scores, k - 1)[:k] if k > 0 else []
        best = sorted(best, key=lambda i: -scores[i])
        return [(self.tokens[i], float(scores[i])) for i in best]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator else 0.0


def read_word_list(path: Path) -> list[str]:
    """Words from a file: whitespace-separated, ``#`` starts a comment."""
    text = read_text(path)
    words = []
    for line in text.splitlines():
        words.extend(line.split("#", 1)[0].split())
    if not words:
        raise InputError("no words in the word list", path)
    return words
