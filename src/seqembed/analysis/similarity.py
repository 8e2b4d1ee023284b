"""Similarity over all pairs of an embedding table's rows, in blocks.

Everything that needs all pairs of rows works in chunks of rows, so a
30,000-word table never becomes a dense 30,000 x 30,000 matrix.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch

CHUNK_ROWS = 2048  # rows per block: 2048 x 30,000 float32 is 245 MB


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


def pair_cosines(unit: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each pair (a[i], b[i]) of unit rows: (len(a),)."""
    return np.einsum("ij,ij->i", unit[a], unit[b])


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
