"""Cosines of vectors that learned nothing: the chance level of a neighbour.

The null model is the one PyTorch starts from: rows drawn independently from
an isotropic Gaussian. The cosine of two such rows in d dimensions does not
depend on their lengths, and (cos + 1) / 2 ~ Beta((d-1)/2, (d-1)/2): mean 0,
standard deviation 1 / sqrt(d). Given one row, the others' directions are
independent, so the k-th best of M candidates exceeds x about as often as
Binomial(M, P(cos > x)) reaches k.

This sits with the tables (below the analysis) because a neighbour query
(``EmbeddingTable.most_similar(..., chance=True)``) reports it beside each
cosine; ``seqembed.analysis.chance`` builds the analysis' tests on it.
scipy is imported when a chance level is asked for, not with the table.
"""

from __future__ import annotations

import numpy as np


def cosine_sf(x: float | np.ndarray, dim: int) -> float | np.ndarray:
    """P(cos > x) for two independent isotropic vectors in ``dim`` dimensions."""
    from scipy import stats

    a = (dim - 1) / 2
    return stats.beta.sf((np.asarray(x) + 1) / 2, a, a)


def typical_cosine(rank: int, n_candidates: int, dim: int) -> float:
    """The typical (median) ``rank``-th largest cosine of one random vector
    with ``n_candidates`` others in ``dim`` dimensions (rank 1: the best)."""
    from scipy import stats

    if not 1 <= rank <= n_candidates:
        raise ValueError(f"rank {rank} is not between 1 and {n_candidates}")
    a = (dim - 1) / 2
    # The median of the k-th order statistic of M uniforms is the median of
    # Beta(k, M - k + 1); map that tail probability back to a cosine.
    tail = stats.beta.median(rank, n_candidates - rank + 1)
    return float(2 * stats.beta.isf(tail, a, a) - 1)


def expected_top_scores(n: int, n_pairs: int, dim: int) -> list[float]:
    """The typical k-th largest cosine among ``n_pairs`` random pairs, for
    k = 1..n (at most ``n_pairs``)."""
    return [typical_cosine(k, n_pairs, dim) for k in range(1, min(n, n_pairs) + 1)]
