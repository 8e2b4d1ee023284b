"""Norms and cosines of one table: summary statistics by frequency band,
norm outlier candidates, and how far training moved the vectors, each
beside norm-matched random vectors (see ``chance``)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from seqembed.analysis import chance
from seqembed.analysis.similarity import cosine_moments, pair_cosines
from seqembed.vectors.table import EmbeddingTable

FREQUENCY_BANDS = ((1, 1), (2, 4), (5, 19), (20, 99), (100, 999), (1000, None))


def finite_or_none(value: float | None) -> float | None:
    """A float for JSON: NaN and infinities (no such figure) become None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _norm_and_cosine(table: EmbeddingTable, scan) -> dict:
    summary = scan[0]
    return {
        "norm_mean": float(table.norms.mean()),
        "norm_std": float(table.norms.std()),
        "cosine_mean": finite_or_none(summary.mean),
        "cosine_std": finite_or_none(summary.std),
        "cosine_min": finite_or_none(summary.min),
        "cosine_max": finite_or_none(summary.max),
    }


def statistics(table: EmbeddingTable, scan, initial_scan=None, initial=None) -> dict:
    scale = chance.coordinate_scale(table.vectors)
    norm_mean, norm_std = chance.chi_norm_moments(table.dim, scale)
    n_pairs = len(table) * (len(table) - 1) // 2
    extremes = chance.expected_top_scores(1, n_pairs, table.dim) if n_pairs else [0]
    unit = table.unit_vectors()
    bands = []
    for low, high in FREQUENCY_BANDS:
        mask = (table.freqs >= low) & (
            (table.freqs <= high) if high is not None else True
        )
        rows = np.flatnonzero(mask)
        if len(rows) == 0:
            continue
        _, mean, std = cosine_moments(unit[rows])
        norms = table.norms[rows]
        bands.append(
            {
                "band": f"{low}-{high}" if high is not None else f"{low}+",
                "n_words": int(len(rows)),
                "norm_mean": float(norms.mean()),
                "norm_std": float(norms.std()),
                "cosine_mean": finite_or_none(mean),
                "cosine_std": finite_or_none(std),
            }
        )
    return {
        "overall": _norm_and_cosine(table, scan),
        "initial": None
        if initial_scan is None
        else _norm_and_cosine(initial, initial_scan),
        "chance": {
            "norm_mean": norm_mean,
            "norm_std": norm_std,
            "cosine_mean": 0.0,
            "cosine_std": 1 / math.sqrt(table.dim),
            "cosine_min": -extremes[0],
            "cosine_max": extremes[0],
        },
        "by_frequency": bands,
        "norm_frequency": norm_frequency(table, initial),
    }


def norm_frequency(table: EmbeddingTable, initial: EmbeddingTable | None) -> dict:
    """High norms are usually a frequency effect: Spearman's rho of norm
    against training frequency (and the same for the initial vectors)."""
    if len(set(table.freqs.tolist())) < 2 or len(table) < 3:
        return {"spearman": None, "p_value": None, "initial_spearman": None}
    rho, p = stats.spearmanr(table.norms, table.freqs)
    initial_rho = None
    if initial is not None:
        initial_rho = finite_or_none(stats.spearmanr(initial.norms, initial.freqs)[0])
    return {
        "spearman": finite_or_none(rho),
        "p_value": finite_or_none(p),
        "initial_spearman": initial_rho,
    }


# ------------------------------------------------------------ outliers


def _deviations(norms: np.ndarray, rule: str) -> np.ndarray:
    """Each norm's deviation score along the last axis: |z| for the std rule,
    Iglewicz and Hoaglin's modified z, 0.6745 |x - median| / MAD, for the
    MAD rule. Works on one table (n,) or many simulated ones (sims, n)."""
    if rule == "std":
        centre = norms.mean(axis=-1, keepdims=True)
        spread = norms.std(axis=-1, keepdims=True)
        return np.abs(norms - centre) / np.where(spread > 0, spread, np.inf)
    median = np.median(norms, axis=-1, keepdims=True)
    mad = np.median(np.abs(norms - median), axis=-1, keepdims=True)
    return 0.6745 * np.abs(norms - median) / np.where(mad > 0, mad, np.inf)


def outliers(
    table: EmbeddingTable,
    initial: EmbeddingTable | None,
    k_std: float,
    mad_threshold: float,
    rng: np.random.Generator,
    max_draws: int = 3_000_000,
) -> dict:
    """Norm outlier *candidates* by two rules. Chance: the rate each rule
    flags in norm-matched random vectors (scale x chi(dim) lengths), and how
    often their most extreme word deviates as much as this table's (a rate
    test cannot see one extreme word among many)."""
    scale = chance.coordinate_scale(table.vectors)
    n_simulations = int(np.clip(max_draws // len(table), 100, 1000))
    random_norms = scale * np.sqrt(
        2 * rng.standard_gamma(table.dim / 2, size=(n_simulations, len(table)))
    )  # chi-square(d) = 2 x Gamma(d / 2): lengths of Gaussian rows
    result = {}
    for key, rule, threshold, label in (
        ("std_rule", "std", k_std, f"|norm - mean| > {k_std:g} std"),
        ("mad_rule", "mad", mad_threshold, f"modified z > {mad_threshold:g} (MAD)"),
    ):
        scores = _deviations(table.norms, rule)
        flags = scores > threshold
        random_scores = _deviations(random_norms, rule)
        counts = (random_scores > threshold).sum(axis=1)
        order = np.argsort(-scores)
        result[key] = {
            "rule": label,
            "candidates": [
                {
                    "word": table.tokens[i],
                    "norm": float(table.norms[i]),
                    "freq": int(table.freqs[i]),
                }
                for i in order
                if flags[i]
            ],
            "rate": float(flags.mean()),
            "chance_rate": float(counts.mean() / len(table)),
            "p_value": chance.permutation_pvalue(flags.sum(), counts),
            "largest": {
                "word": table.tokens[order[0]],
                "score": float(scores[order[0]]),
                "chance_score": float(np.median(random_scores.max(axis=1))),
                "p_value": chance.permutation_pvalue(
                    scores[order[0]], random_scores.max(axis=1)
                ),
            },
            "n_simulations": n_simulations,
            "initial_rate": None
            if initial is None
            else float((_deviations(initial.norms, rule) > threshold).mean()),
        }
    return result


# ------------------------------------------------------------ movement


def movement(
    table: EmbeddingTable,
    initial: EmbeddingTable,
    rng: np.random.Generator,
    n_sampled_pairs: int = 200_000,
    n_listed: int = 10,
) -> dict:
    """How far each vector moved from its initial value, and how much of the
    trained similarity structure the initial vectors already had."""
    change = np.linalg.norm(table.vectors - initial.vectors, axis=1) / np.maximum(
        initial.norms, 1e-12
    )
    order = np.argsort(-change)
    n_words = len(table)
    a = rng.integers(0, n_words, size=n_sampled_pairs)
    b = rng.integers(0, n_words, size=n_sampled_pairs)
    keep = a != b
    trained = pair_cosines(table.unit_vectors(), a[keep], b[keep])
    untrained = pair_cosines(initial.unit_vectors(), a[keep], b[keep])
    correlation = (
        float(np.corrcoef(trained, untrained)[0, 1]) if keep.sum() > 2 else None
    )

    def listing(rows):
        return [
            {
                "word": table.tokens[i],
                "relative_change": float(change[i]),
                "freq": int(table.freqs[i]),
            }
            for i in rows
        ]

    return {
        "relative_change_mean": float(change.mean()),
        "relative_change_median": float(np.median(change)),
        "most_moved": listing(order[:n_listed]),
        "least_moved": listing(order[::-1][:n_listed]),
        "similarity_correlation": finite_or_none(correlation),
        "note": "similarity_correlation: Pearson r between initial and trained "
        "cosines of the same word pairs; near 1 means the trained similarities "
        "are mostly the random initial ones",
    }
