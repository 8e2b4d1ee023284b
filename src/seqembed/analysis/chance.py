"""What numbers look like when vectors learned nothing.

Every figure the analysis reports is compared with its chance level. The null
model is the one PyTorch starts from: rows drawn independently from an
isotropic Gaussian. Two facts about it do most of the work:

* The cosine of two independent isotropic vectors in d dimensions does not
  depend on their lengths, and (cos + 1) / 2 ~ Beta((d-1)/2, (d-1)/2): mean 0,
  standard deviation 1 / sqrt(d).
* Cosines of distinct pairs are pairwise independent (given one vector, the
  other's direction is uniform), so the k-th largest of M pair cosines exceeds
  x about as often as Binomial(M, P(cos > x)) reaches k.

For norms, "norm-matched" random vectors are Gaussian rows with the same mean
squared coordinate as the table, so their lengths follow sigma * chi(d).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

# The cosine null lives with the tables, which report it beside a neighbour.
from seqembed.vectors.null import cosine_sf, expected_top_scores  # noqa: F401


def cosine_two_sided(x: float | np.ndarray, dim: int) -> float | np.ndarray:
    """P(|cos| >= |x|) under the same null."""
    return np.minimum(1.0, 2 * cosine_sf(np.abs(x), dim))


def top_pair_pvalues(scores: list[float], n_pairs: int, dim: int) -> list[float]:
    """p-value of the k-th best pair (``scores`` best first) among ``n_pairs``:
    how often random vectors have at least k pairs this similar."""
    tails = cosine_sf(np.asarray(scores, dtype=np.float64), dim)
    ranks = np.arange(1, len(scores) + 1)
    # P(Binomial(M, q) >= k) = sf(k - 1)
    return [float(p) for p in stats.binom.sf(ranks - 1, n_pairs, tails)]


def random_table(
    n_words: int, dim: int, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian rows with per-coordinate std ``scale`` (float32)."""
    return (rng.standard_normal((n_words, dim)) * scale).astype(np.float32)


def coordinate_scale(vectors: np.ndarray) -> float:
    """Per-coordinate std that gives random rows the table's mean squared norm."""
    return float(math.sqrt(np.mean(np.square(vectors, dtype=np.float64))))


def chi_norm_moments(dim: int, scale: float) -> tuple[float, float]:
    """Mean and std of the length of a Gaussian row: scale * chi(dim)."""
    mean, variance = stats.chi.stats(dim, moments="mv")
    return float(mean) * scale, float(math.sqrt(variance)) * scale


def pairwise_cosine_chance(dim: int) -> tuple[float, float]:
    """Mean and std of the cosine of two random rows."""
    return 0.0, 1.0 / math.sqrt(dim)


def adjust(pvalues: list[float], method: str = "holm") -> list[float]:
    """Multiple-comparison adjusted p-values: Holm (family-wise error) or
    Benjamini-Hochberg ("bh", false discovery rate)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    if method == "holm":
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    elif method == "bh":
        ranked = p[order] * m / np.arange(1, m + 1)
        stepped = np.minimum.accumulate(ranked[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r} (holm or bh)")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(value) for value in adjusted]


def permutation_pvalue(observed: float, null: np.ndarray) -> float:
    """One-sided (greater) p-value with the +1 correction, never 0."""
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))
