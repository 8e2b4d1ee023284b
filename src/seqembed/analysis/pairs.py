"""The most similar pairs of one table and the pairs a user names, each
beside what random vectors give.

Two nulls for the top pairs (see ``chance`` for the first):

    isotropic   the k-th best cosine among this many pairs of independent
                isotropic Gaussian vectors of this dimension
    shaped      the top pairs of ``shaped_null_repeats`` Gaussian tables with
                this table's mean vector and covariance: trained tables share
                directions, which alone lifts their top pairs far above
                isotropic chance
"""

from __future__ import annotations

import numpy as np

from seqembed.analysis import chance
from seqembed.analysis.settings import default
from seqembed.analysis.similarity import scan_pairs
from seqembed.vectors.table import EmbeddingTable

# 1 / (19 + 1): a family-wise level of 0.05 over all ranks.
SHAPED_REPEATS = default("shaped_null_repeats")


def shaped_top_scores(
    table: EmbeddingTable, n: int, repeats: int, rng: np.random.Generator
) -> np.ndarray | None:
    """The top-n cosines of Gaussian tables with this table's mean vector and
    covariance, (repeats, n). Trained embeddings share directions (a common
    mean, a few dominant axes), which alone lifts the top pairs far above
    isotropic chance; a pair that means something must beat this too.

    The covariance needs several words per dimension to be estimated: with
    fewer than 4 x dim words (the design's 18 words in 64 dimensions) the
    sample covariance is rank-deficient, its random tables live in a
    subspace, and their cosines would be inflated; there is no shaped null.
    """
    if repeats <= 0 or n <= 0 or len(table) < 4 * table.dim:
        return None
    vectors = table.vectors.astype(np.float64)
    mean = vectors.mean(axis=0)
    # Cholesky factor of the covariance (jitter keeps a rank-deficient one usable).
    covariance = np.cov(vectors, rowvar=False) + 1e-9 * np.eye(table.dim)
    factor = np.linalg.cholesky(covariance)
    tops = []
    for _ in range(repeats):
        noise = rng.standard_normal((len(table), table.dim))
        fake = (mean + noise @ factor.T).astype(np.float32)
        fake /= np.maximum(np.linalg.norm(fake, axis=1, keepdims=True), 1e-12)
        _, best = scan_pairs(fake, n)
        tops.append([score for _, _, score in best])
    return np.array(tops)


def similar_pairs(
    table: EmbeddingTable,
    initial: EmbeddingTable | None,
    scan,
    initial_scan,
    repeats: int | None,
    rng: np.random.Generator,
) -> dict:
    summary, top = scan
    n_pairs = summary.n_pairs
    expected = chance.expected_top_scores(len(top), n_pairs, table.dim)
    pvalues = chance.top_pair_pvalues([s for _, _, s in top], n_pairs, table.dim)
    shaped = shaped_top_scores(
        table, len(top), SHAPED_REPEATS if repeats is None else repeats, rng
    )
    pairs = _pair_rows(table, initial, top, expected, pvalues, shaped)
    initial_top = []
    if initial_scan is not None:
        initial_top = [
            {"a": table.tokens[i], "b": table.tokens[j], "cosine": s}
            for i, j, s in initial_scan[1]
        ]
    return {
        "n_pairs": n_pairs,
        "shaped_null_repeats": 0 if shaped is None else len(shaped),
        # If this table were such a random table, its best pair would beat the
        # best pairs of all R others with probability 1 / (R + 1), and every
        # lower-ranked pair is below its best: one test for all ranks.
        "shaped_threshold": None if shaped is None else float(shaped[:, 0].max()),
        "shaped_level": None if shaped is None else 1 / (len(shaped) + 1),
        "shaped_best_median": None
        if shaped is None
        else float(np.median(shaped[:, 0])),
        "pairs": pairs,
        "initial_top": initial_top,
        "note": "chance_cosine: the typical k-th best cosine among this many "
        "pairs of isotropic random vectors of this dimension (p_value is against "
        "them); shaped_chance_cosine: the median k-th best cosine of "
        "shaped_null_repeats random tables with this table's mean and covariance; "
        "shaped_threshold: the best pair of any of them, which a pair must beat "
        "to be above chance (a test of level shaped_level over all ranks); "
        "shaped_p_value: the share of them whose best pair is at least this "
        "similar (that test's p-value); shaped_best_median: their typical best "
        "pair, the chance level of that test",
    }


def _pair_rows(table, initial, top, expected, pvalues, shaped) -> list[dict]:
    """One dict per top pair: cosines, isotropic and shaped chance."""
    initial_unit = initial.unit_vectors() if initial is not None else None
    pairs = []
    for rank, ((i, j, score), typical, p) in enumerate(
        zip(top, expected, pvalues), start=1
    ):
        pairs.append(
            {
                "rank": rank,
                "a": table.tokens[i],
                "b": table.tokens[j],
                "cosine": score,
                "initial_cosine": None
                if initial_unit is None
                else float(initial_unit[i] @ initial_unit[j]),
                "chance_cosine": typical,
                "p_value": p,
                "shaped_chance_cosine": None
                if shaped is None
                else float(np.median(shaped[:, rank - 1])),
                # The share of shaped tables whose best pair is at least this
                # similar (+1): the p-value of the test over all ranks.
                "shaped_p_value": None
                if shaped is None
                else chance.permutation_pvalue(score, shaped[:, 0]),
            }
        )
    return pairs


def chosen_pair_listing(
    table: EmbeddingTable,
    initial: EmbeddingTable | None,
    pairs: list[tuple[str, str]],
    sentences: list[list[str]] | None,
) -> list[dict]:
    """Cosine of each named pair, its initial value, how many training
    sentences hold both words, and the two-sided chance p-value of |cosine|."""
    sets = [set(s) for s in sentences] if sentences is not None else None
    listing = []
    for a, b in pairs:
        present = a in table and b in table
        value = table.similarity(a, b) if present else None
        listing.append(
            {
                "a": a,
                "b": b,
                "cosine": value,
                "initial_cosine": initial.similarity(a, b)
                if present and initial is not None
                else None,
                "cooccurrences": None
                if sets is None
                else sum(1 for s in sets if a in s and b in s),
                "p_value": float(chance.cosine_two_sided(value, table.dim))
                if present
                else None,
                "missing": [w for w in (a, b) if w not in table],
            }
        )
    return listing
