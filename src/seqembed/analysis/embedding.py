"""Embedding analysis, every figure beside its chance level.

``EmbeddingAnalysis(...).fit(table, initial=..., groups=..., sentences=...)``
computes, for one embedding table (one side of one run):

    similar_pairs   the top-N pairs by cosine
    groups          mean within-group cosine of named word groups
    cooccurrence    pairs that share a training sentence vs pairs that never do
    chosen_pairs    a listing for pairs the user names
    statistics      norms and pairwise cosines, overall and by frequency band
    outliers        the k-std norm rule beside a robust median/MAD rule
    movement        how far each vector moved from its initial value

and, side by side with each, (a) the same figure on the untrained initial
vectors of the same words, (b) what random vectors of the same dimension give
(see ``chance``), (c) the movement from initial values. ``findings_`` turns
the tests into plain sentences with multiple-comparison adjusted p-values.
The result (``result_``) is plain JSON data; its schema is
``resources/analysis.schema.json``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from seqembed.analysis import chance
from seqembed.analysis.similarity import cosine_moments, scan_pairs
from seqembed.vectors.table import EmbeddingTable

FREQUENCY_BANDS = ((1, 1), (2, 4), (5, 19), (20, 99), (100, 999), (1000, None))
MIN_BIN_WORDS = 20  # fewer words than this per bin: no frequency matching


@dataclass(frozen=True)
class Finding:
    """One test: a figure, its chance level and the verdict."""

    figure: str
    subject: str
    value: float
    chance: float
    p_value: float
    p_adjusted: float = float("nan")
    above_chance: bool = False
    # Top pairs only: the best pair of any random table shaped like this one;
    # a pair must beat it (a family-wise test over all ranks, see similar_pairs).
    shaped_chance: float | None = None

    def sentence(self, alpha: float) -> str:
        verdict = "above chance" if self.above_chance else "not above chance"
        shaped = ""
        if self.shaped_chance is not None:
            shaped = f"; best {self.shaped_chance:.4f} in random tables shaped like it"
        return (
            f"{self.subject}: {self.value:.4f} (chance {self.chance:.4f}{shaped}) "
            f"is {verdict} (adjusted p = {self.p_adjusted:.3g}, level {alpha})"
        )


class EmbeddingAnalysis:
    """The analyses of one embedding table, estimator style.

    Parameters are stored as given; ``fit`` does the work and sets
    ``result_`` (a JSON-ready dict) and ``findings_`` (a list of Finding).
    """

    def __init__(
        self,
        top_n: int = 20,
        k_std: float = 2.0,
        mad_threshold: float = 3.5,
        n_permutations: int = 1000,
        max_pairs: int = 20_000,
        alpha: float = 0.05,
        correction: str = "holm",
        shaped_null_repeats: int | None = None,
        random_state: int = 0,
    ):
        self.top_n = top_n
        self.k_std = k_std
        self.mad_threshold = mad_threshold
        self.n_permutations = n_permutations
        self.max_pairs = max_pairs
        self.alpha = alpha
        self.correction = correction
        self.shaped_null_repeats = shaped_null_repeats
        self.random_state = random_state

    def fit(
        self,
        table: EmbeddingTable,
        initial: EmbeddingTable | None = None,
        groups: dict[str, list[str]] | None = None,
        sentences: list[list[str]] | None = None,
        chosen_pairs: list[tuple[str, str]] | None = None,
    ) -> EmbeddingAnalysis:
        if len(table) < 2:
            raise ValueError("the analysis needs at least two words")
        if initial is not None:
            initial = initial.select(table.tokens)
        rng = np.random.default_rng(self.random_state)
        bins, matched = frequency_bins(table.freqs)
        scan = scan_pairs(table.unit_vectors(), self.top_n)
        initial_scan = None
        if initial is not None:
            initial_scan = scan_pairs(initial.unit_vectors(), self.top_n)
        result = {
            "n_words": len(table),
            "dim": table.dim,
            "similar_pairs": similar_pairs(
                table, initial, scan, initial_scan, self.shaped_null_repeats, rng
            ),
            "statistics": statistics(table, scan, initial_scan, initial),
            "outliers": outliers(table, initial, self.k_std, self.mad_threshold, rng),
            "movement": movement(table, initial, rng) if initial else None,
            "groups": None,
            "cooccurrence": None,
            "chosen_pairs": None,
        }
        if groups:
            result["groups"] = group_cohesion(
                table, initial, groups, bins, matched, self.n_permutations, rng
            )
        if sentences is not None:
            result["cooccurrence"] = cooccurrence(
                table, initial, sentences, bins, matched, self.max_pairs, rng
            )
        if chosen_pairs:
            result["chosen_pairs"] = chosen_pair_listing(
                table, initial, chosen_pairs, sentences
            )
        self.findings_ = self._judge(result)
        result["findings"] = {
            "alpha": self.alpha,
            "correction": self.correction,
            "tests": [finding.__dict__ for finding in self.findings_],
            "summary": [finding.sentence(self.alpha) for finding in self.findings_],
        }
        self.result_ = result
        return self

    def _judge(self, result: dict) -> list[Finding]:
        """Collect every test, adjust the p-values together (one family), and
        mark which are above chance at ``alpha``."""
        raw = []
        for pair in result["similar_pairs"]["pairs"]:
            raw.append(
                Finding(
                    "similar_pairs",
                    f"top pair #{pair['rank']} {pair['a']}-{pair['b']}",
                    pair["cosine"],
                    pair["chance_cosine"],
                    pair["p_value"],
                    shaped_chance=result["similar_pairs"]["shaped_threshold"],
                )
            )
        for group in (result["groups"] or {}).get("groups", []):
            if group["p_value"] is not None:
                raw.append(
                    Finding(
                        "groups",
                        f"group {group['name']} within-group cosine",
                        group["within"],
                        group["chance_within"],
                        group["p_value"],
                    )
                )
        co = result["cooccurrence"]
        if co and co["p_value"] is not None:
            raw.append(
                Finding(
                    "cooccurrence",
                    "co-occurring minus never co-occurring pairs, mean cosine",
                    co["difference"],
                    0.0,
                    co["p_value"],
                )
            )
        for pair in result["chosen_pairs"] or []:
            if pair["cosine"] is not None:
                raw.append(
                    Finding(
                        "chosen_pairs",
                        f"pair {pair['a']}-{pair['b']} cosine",
                        pair["cosine"],
                        0.0,
                        pair["p_value"],
                    )
                )
        for rule in ("std_rule", "mad_rule"):
            figure = result["outliers"][rule]
            raw.append(
                Finding(
                    "outliers",
                    f"outlier rate, {figure['rule']}",
                    figure["rate"],
                    figure["chance_rate"],
                    figure["p_value"],
                )
            )
        largest = result["outliers"]["mad_rule"]["largest"]
        raw.append(
            Finding(
                "outliers",
                f"most extreme norm, {largest['word']} (modified z)",
                largest["score"],
                largest["chance_score"],
                largest["p_value"],
            )
        )
        norm_frequency = result["statistics"]["norm_frequency"]
        if norm_frequency["p_value"] is not None:
            raw.append(
                Finding(
                    "statistics",
                    "Spearman correlation of norm with frequency",
                    norm_frequency["spearman"],
                    0.0,
                    norm_frequency["p_value"],
                )
            )
        adjusted = chance.adjust([f.p_value for f in raw], self.correction)
        return [
            Finding(
                f.figure,
                f.subject,
                f.value,
                f.chance,
                f.p_value,
                p,
                bool(p <= self.alpha)
                and (f.shaped_chance is None or f.value > f.shaped_chance),
                f.shaped_chance,
            )
            for f, p in zip(raw, adjusted)
        ]


# ------------------------------------------------------------- helpers


def frequency_bins(freqs: np.ndarray) -> tuple[np.ndarray, bool]:
    """Equal-count bins of training frequency, for frequency-matched nulls.

    Frequent words have larger norms and different neighbours, so a fair null
    draws its random words from the same frequency bins. With fewer than
    2 x MIN_BIN_WORDS words there is one bin: no matching (said in the result).
    """
    n_bins = min(10, len(freqs) // MIN_BIN_WORDS)
    if n_bins < 2:
        return np.zeros(len(freqs), dtype=np.int64), False
    # Rank with random-free tie breaking by position, then cut into n_bins.
    ranks = np.argsort(np.argsort(freqs, kind="stable"), kind="stable")
    return (ranks * n_bins // len(freqs)).astype(np.int64), True


def _pair_cosines(unit: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", unit[a], unit[b])


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


# ------------------------------------------------------- similar pairs


SHAPED_REPEATS = 19  # 1 / (19 + 1): a family-wise level of 0.05 over all ranks


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
            }
        )
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
        "pairs": pairs,
        "initial_top": initial_top,
        "note": "chance_cosine: the typical k-th best cosine among this many "
        "pairs of isotropic random vectors of this dimension (p_value is against "
        "them); shaped_chance_cosine: the median k-th best cosine of "
        "shaped_null_repeats random tables with this table's mean and covariance; "
        "shaped_threshold: the best pair of any of them, which a pair must beat "
        "to be above chance (a test of level shaped_level over all ranks)",
    }


# --------------------------------------------------------- statistics


def _norm_and_cosine(table: EmbeddingTable, scan) -> dict:
    summary = scan[0]
    return {
        "norm_mean": float(table.norms.mean()),
        "norm_std": float(table.norms.std()),
        "cosine_mean": _round(summary.mean),
        "cosine_std": _round(summary.std),
        "cosine_min": _round(summary.min),
        "cosine_max": _round(summary.max),
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
                "cosine_mean": _round(mean),
                "cosine_std": _round(std),
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
        initial_rho = _round(stats.spearmanr(initial.norms, initial.freqs)[0])
    return {
        "spearman": _round(rho),
        "p_value": _round(p),
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
    trained = _pair_cosines(table.unit_vectors(), a[keep], b[keep])
    untrained = _pair_cosines(initial.unit_vectors(), a[keep], b[keep])
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
        "similarity_correlation": _round(correlation),
        "note": "similarity_correlation: Pearson r between initial and trained "
        "cosines of the same word pairs; near 1 means the trained similarities "
        "are mostly the random initial ones",
    }


# -------------------------------------------------------------- groups


def _mean_within(unit: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Mean off-diagonal cosine of each row of ``members`` (n_sets, size)."""
    vectors = unit[members]  # (n_sets, size, dim)
    gram = vectors @ vectors.transpose(0, 2, 1)  # (n_sets, size, size)
    size = members.shape[1]
    off_diagonal = gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)
    return off_diagonal / (size * (size - 1))


def _random_sets(
    bins: np.ndarray, members: np.ndarray, n_sets: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_sets`` random word sets with the same bin composition as ``members``
    (distinct words within a set)."""
    result = np.empty((n_sets, len(members)), dtype=np.int64)
    column = 0
    for bin_id in np.unique(bins[members]):
        pool = np.flatnonzero(bins == bin_id)
        need = int(np.sum(bins[members] == bin_id))
        # argsort of random keys = a random permutation per set; take `need`.
        keys = rng.random((n_sets, len(pool)))
        picked = np.argpartition(keys, need - 1, axis=1)[:, :need]
        result[:, column : column + need] = pool[picked]
        column += need
    return result


def group_cohesion(
    table: EmbeddingTable,
    initial: EmbeddingTable | None,
    groups: dict[str, list[str]],
    bins: np.ndarray,
    matched: bool,
    n_permutations: int,
    rng: np.random.Generator,
) -> dict:
    """Mean within-group cosine of each group, the mean cosine between its
    words and the other groups' words, and a permutation p-value: how often
    random word sets of the same size (and frequency bins) are as cohesive."""
    unit = table.unit_vectors()
    initial_unit = initial.unit_vectors() if initial is not None else None
    # A repeated word would pair with itself (cosine 1): count each word once.
    groups = {name: list(dict.fromkeys(words)) for name, words in groups.items()}
    members_of = {
        name: np.array([table.index[w] for w in words if w in table], dtype=np.int64)
        for name, words in groups.items()
    }
    results = []
    for name, words in groups.items():
        members = members_of[name]
        others = np.array(
            sorted(
                {i for other, ids in members_of.items() if other != name for i in ids}
                - set(members.tolist())
            ),
            dtype=np.int64,
        )
        entry = {
            "name": name,
            "words": [table.tokens[i] for i in members],
            "missing": [w for w in words if w not in table],
            "within": None,
            "between": None,
            "initial_within": None,
            "chance_within": None,
            "chance_within_std": None,
            "p_value": None,
        }
        if len(members) >= 2:
            entry["within"] = float(_mean_within(unit, members[None])[0])
            null = _mean_within(unit, _random_sets(bins, members, n_permutations, rng))
            entry["chance_within"] = float(null.mean())
            entry["chance_within_std"] = float(null.std())
            entry["p_value"] = chance.permutation_pvalue(entry["within"], null)
            if initial_unit is not None:
                entry["initial_within"] = float(
                    _mean_within(initial_unit, members[None])[0]
                )
        if len(members) and len(others):
            entry["between"] = float((unit[members] @ unit[others].T).mean())
        results.append(entry)
    return {
        "n_permutations": n_permutations,
        "frequency_matched": matched,
        "groups": results,
        "note": "chance_within: mean within-group cosine of random word sets of "
        "the same size" + (" drawn from the same frequency bins" if matched else ""),
    }


# --------------------------------------------------------- co-occurrence


def _pair_code(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    low, high = np.minimum(i, j), np.maximum(i, j)
    return low * n + high


def cooccurring_codes(table: EmbeddingTable, sentences: list[list[str]]) -> np.ndarray:
    """Sorted codes (i * n + j, i < j) of word pairs that share a sentence."""
    n = len(table)
    codes = set()
    for sentence in sentences:
        ids = sorted({table.index[t] for t in sentence if t in table.index})
        codes.update(i * n + j for i, j in itertools.combinations(ids, 2))
    return np.array(sorted(codes), dtype=np.int64)


def _never_matching(
    co_i, co_j, bins, co_codes, n_words, rng, max_rounds: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """One never-co-occurring pair per co-occurring pair, each word drawn from
    the frequency bin of the word it replaces."""
    pools = {b: np.flatnonzero(bins == b) for b in np.unique(bins)}
    never_i = np.full(len(co_i), -1)
    never_j = np.full(len(co_i), -1)
    todo = np.arange(len(co_i))
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        draw_i = np.array([rng.choice(pools[bins[k]]) for k in co_i[todo]])
        draw_j = np.array([rng.choice(pools[bins[k]]) for k in co_j[todo]])
        ok = (draw_i != draw_j) & ~np.isin(
            _pair_code(draw_i, draw_j, n_words), co_codes
        )
        never_i[todo[ok]], never_j[todo[ok]] = draw_i[ok], draw_j[ok]
        todo = todo[~ok]
    found = never_i >= 0
    return never_i[found], never_j[found]


def cooccurrence(
    table: EmbeddingTable,
    initial: EmbeddingTable | None,
    sentences: list[list[str]],
    bins: np.ndarray,
    matched: bool,
    max_pairs: int,
    rng: np.random.Generator,
) -> dict:
    """Are pairs that share a training sentence more similar than pairs that
    never do? Difference of means, Cohen's d and a one-sided Mann-Whitney U."""
    n = len(table)
    co_codes = cooccurring_codes(table, sentences)
    n_all = n * (n - 1) // 2
    sample = co_codes
    if len(sample) > max_pairs:
        sample = rng.choice(co_codes, size=max_pairs, replace=False)
    co_i, co_j = sample // n, sample % n
    if matched:
        never_i, never_j = _never_matching(co_i, co_j, bins, co_codes, n, rng)
    else:
        # Small vocabulary: every never-co-occurring pair (or a sample of them).
        i, j = np.triu_indices(n, 1)
        never = ~np.isin(i * n + j, co_codes)
        never_i, never_j = i[never], j[never]
        if len(never_i) > max_pairs:
            keep = rng.choice(len(never_i), size=max_pairs, replace=False)
            never_i, never_j = never_i[keep], never_j[keep]
    result = {
        "n_cooccurring": int(len(co_codes)),
        "n_never": int(n_all - len(co_codes)),
        "n_compared": [int(len(co_i)), int(len(never_i))],
        "frequency_matched": matched,
        "cooccurring_mean": None,
        "never_mean": None,
        "difference": None,
        "effect_size": None,
        "p_value": None,
        "initial_difference": None,
        "initial_p_value": None,
    }
    if len(co_i) < 2 or len(never_i) < 2:
        return result
    for prefix, source in (("", table), ("initial_", initial)):
        if source is None:
            continue
        unit = source.unit_vectors()
        co = _pair_cosines(unit, co_i, co_j)
        never = _pair_cosines(unit, never_i, never_j)
        difference = float(co.mean() - never.mean())
        p = float(stats.mannwhitneyu(co, never, alternative="greater").pvalue)
        result[f"{prefix}difference"] = difference
        result[f"{prefix}p_value"] = _round(p)
        if prefix == "":
            pooled = math.sqrt((co.var(ddof=1) + never.var(ddof=1)) / 2)
            result["cooccurring_mean"] = float(co.mean())
            result["never_mean"] = float(never.mean())
            result["effect_size"] = _round(difference / pooled if pooled else None)
    return result


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
