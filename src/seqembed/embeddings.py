"""An embedding table as plain data, and the similarity computations over it.

``EmbeddingTable`` holds tokens, token -> row index, a (n_words, dim) float32
matrix, each token's training frequency, and cached norms (gensim's
KeyedVectors, without the sixty methods). Everything that needs all pairs of
rows works in chunks of rows, so a 30,000-word table never becomes a dense
30,000 x 30,000 matrix.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqembed.errors import InputError
from seqembed.textfile import read_text
from seqembed.vocab import SPECIALS

# Which matrix of a checkpoint a table comes from.
#   src      encoder input embeddings (source words)
#   tgt      decoder input embeddings (target words)
#   out      decoder output projection rows (target words)
KINDS = ("src", "tgt", "out")
_WEIGHTS = {
    "src": "encoder.embedding.weight",
    "tgt": "decoder.embedding.weight",
    "out": "decoder.output_projection.weight",
}

CHUNK_ROWS = 2048  # rows per block: 2048 x 30,000 float32 is 245 MB


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


def load_tables(
    state: dict[str, Any], initial: bool = False
) -> dict[str, EmbeddingTable]:
    """The src/tgt/out tables of a loaded checkpoint (``initial``: the
    untrained values saved at the start of training, where present)."""
    src_vocab, tgt_vocab = state["src_vocab"], state["tgt_vocab"]
    vocab_of = {"src": src_vocab, "tgt": tgt_vocab, "out": tgt_vocab}
    tables = {}
    for kind in KINDS:
        if initial:
            weight = state.get("initial_embeddings", {}).get(kind)
        else:
            weight = state["model"].get(_WEIGHTS[kind])
        if weight is None:
            continue
        vocab = vocab_of[kind]
        tables[kind] = EmbeddingTable(
            list(vocab["tokens"]), weight.float().numpy(), vocab["freqs"]
        )
    return tables


def read_word_list(path: Path) -> list[str]:
    """Words from a file: whitespace-separated, ``#`` starts a comment."""
    text = read_text(path)
    words = []
    for line in text.splitlines():
        words.extend(line.split("#", 1)[0].split())
    if not words:
        raise InputError("no words in the word list", path)
    return words


# ------------------------------------------------------------ all pairs


def _blocks(n: int, chunk: int = CHUNK_ROWS):
    for start in range(0, n, chunk):
        yield start, min(start + chunk, n)


@dataclass
class PairwiseSummary:
    """Mean, std and range of the cosine over all pairs i < j."""

    n_pairs: int
    mean: float
    std: float
    min: float
    max: float


def cosine_moments(unit: np.ndarray) -> tuple[int, float, float]:
    """Number of pairs i < j and the mean and std of their cosine, exactly and
    without any pairwise matrix: with U the unit rows,

        sum_ij u_i.u_j      = |sum_i u_i|^2
        sum_ij (u_i.u_j)^2  = |U^T U|_F^2      (a dim x dim matrix)

    and the i < j part is (all - diagonal) / 2.
    """
    n_words = len(unit)
    count = n_words * (n_words - 1) // 2
    if count == 0:
        return 0, float("nan"), float("nan")
    unit64 = unit.astype(np.float64)
    squared_norms = np.einsum("ij,ij->i", unit64, unit64)
    total = (np.sum(np.square(unit64.sum(axis=0))) - squared_norms.sum()) / 2
    gram = unit64.T @ unit64  # (dim, dim)
    total_sq = (np.sum(np.square(gram)) - np.sum(np.square(squared_norms))) / 2
    mean = float(total / count)
    variance = max(float(total_sq / count) - mean**2, 0.0)
    return count, mean, variance**0.5


def scan_pairs(
    unit: np.ndarray, top_n: int = 0
) -> tuple[PairwiseSummary, list[tuple[int, int, float]]]:
    """Moments and range of the cosine over all pairs i < j of unit rows, and
    the ``top_n`` most similar pairs (best first).

    Block ``b`` of rows is multiplied only with the rows from ``b``'s first row
    on (the upper triangle plus a small square), so memory is O(chunk x
    n_words) and the work is half the full matrix::

        rows b:  [ square | rectangle to the right ]
                   ^ only its strict upper triangle counts
    """
    n_words = len(unit)
    count, mean, std = cosine_moments(unit)
    if count == 0:
        return PairwiseSummary(0, mean, std, float("nan"), float("nan")), []
    low, high = np.inf, -np.inf
    best: list[tuple[float, int, int]] = []  # min-heap of (score, i, j)
    # torch for the products and the min/max (vectorised, several times
    # faster than numpy's reductions here); numpy views of the same memory.
    rows = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    for start, stop in _blocks(n_words):
        scores = rows[start:stop] @ rows[start:].T  # (block, n_words - start)
        square = scores[:, : stop - start]
        lower = torch.ones_like(square, dtype=torch.bool).tril()
        square.masked_fill_(lower, -np.inf)
        block_high = float(scores.max())
        high = max(high, block_high)
        if top_n:
            _keep_best(scores, start, top_n, best)
        square.masked_fill_(lower, np.inf)
        low = min(low, float(scores.min()))
    summary = PairwiseSummary(count, mean, std, low, high)
    return summary, [(i, j, s) for s, i, j in sorted(best, reverse=True)]


def _keep_best(scores: torch.Tensor, start: int, n: int, best: list) -> None:
    """Merge this block's best scores into the heap ``best`` of the ``n`` best
    (score, i, j) so far.

    Only rows whose maximum reaches the threshold are looked at: the heap's
    minimum, or the n-th largest row maximum (at least n scores reach it).
    """
    row_max = scores.amax(dim=1)  # (block,)
    threshold = best[0][0] if len(best) == n else -np.inf
    if len(row_max) >= n:
        threshold = max(threshold, float(row_max.topk(n).values[-1]))
    rows = torch.nonzero(row_max >= threshold).flatten().numpy()
    if len(rows) == 0:
        return
    selected = scores[rows].numpy()  # (few rows, n_words - start)
    # The masked lower triangle is -inf: never a pair, even below n pairs.
    where_i, where_j = np.nonzero((selected >= threshold) & (selected > -np.inf))
    values = selected[where_i, where_j]
    if len(values) > n:
        keep = np.argpartition(-values, n - 1)[:n]
        where_i, where_j, values = where_i[keep], where_j[keep], values[keep]
    for i, j, value in zip(where_i, where_j, values):
        item = (float(value), start + int(rows[i]), start + int(j))
        if len(best) < n:
            heapq.heappush(best, item)
        elif item > best[0]:
            heapq.heapreplace(best, item)


def top_pairs(unit: np.ndarray, n: int) -> list[tuple[int, int, float]]:
    """The ``n`` most similar pairs (i < j) of unit rows, best first."""
    return scan_pairs(unit, n)[1]


def pairwise_summary(unit: np.ndarray) -> PairwiseSummary:
    return scan_pairs(unit)[0]


def neighbour_ids(unit: np.ndarray, k: int) -> np.ndarray:
    """(n_words, k) indices of each row's k nearest other rows, best first
    (torch.topk: many times faster than numpy's argpartition on wide rows)."""
    n_words = len(unit)
    k = min(k, n_words - 1)
    rows = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    result = np.empty((n_words, k), dtype=np.int64)
    for start, stop in _blocks(n_words):
        scores = rows[start:stop] @ rows.T  # (block, n_words)
        scores[torch.arange(stop - start), torch.arange(start, stop)] = -np.inf
        result[start:stop] = scores.topk(k, dim=1).indices.numpy()
    return result
