"""Do words that belong together sit together? Named topic groups against
random word sets, and pairs that share a training sentence against pairs
that never do; both nulls drawn from the same frequency bins where the
vocabulary is large enough (``frequency_bins``)."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

from seqembed.analysis import chance
from seqembed.analysis.norms import finite_or_none
from seqembed.analysis.similarity import pair_cosines
from seqembed.vectors.table import EmbeddingTable

MIN_BIN_WORDS = 20  # fewer words than this per bin: no frequency matching


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
        cohesion = _cohesion(unit, initial_unit, members, bins, n_permutations, rng)
        between = None
        if len(members) and len(others):
            between = float((unit[members] @ unit[others].T).mean())
        results.append(
            {
                "name": name,
                "words": [table.tokens[i] for i in members],
                "missing": [w for w in words if w not in table],
                "within": cohesion.pop("within"),
                "between": between,
                **cohesion,
            }
        )
    return {
        "n_permutations": n_permutations,
        "frequency_matched": matched,
        "groups": results,
        "note": "chance_within: mean within-group cosine of random word sets of "
        "the same size" + (" drawn from the same frequency bins" if matched else ""),
    }


def _cohesion(unit, initial_unit, members, bins, n_permutations, rng) -> dict:
    """One group's within-group cosine, trained and initial, and its
    permutation null (all None for a group of fewer than two words)."""
    entry = dict.fromkeys(
        ("within", "initial_within", "chance_within", "chance_within_std", "p_value")
    )
    if len(members) < 2:
        return entry
    entry["within"] = float(_mean_within(unit, members[None])[0])
    null = _mean_within(unit, _random_sets(bins, members, n_permutations, rng))
    entry["chance_within"] = float(null.mean())
    entry["chance_within_std"] = float(null.std())
    entry["p_value"] = chance.permutation_pvalue(entry["within"], null)
    if initial_unit is not None:
        entry["initial_within"] = float(_mean_within(initial_unit, members[None])[0])
    return entry


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
        co = pair_cosines(unit, co_i, co_j)
        never = pair_cosines(unit, never_i, never_j)
        difference = float(co.mean() - never.mean())
        p = float(stats.mannwhitneyu(co, never, alternative="greater").pvalue)
        result[f"{prefix}difference"] = difference
        result[f"{prefix}p_value"] = finite_or_none(p)
        if prefix == "":
            pooled = math.sqrt((co.var(ddof=1) + never.var(ddof=1)) / 2)
            result["cooccurring_mean"] = float(co.mean())
            result["never_mean"] = float(never.mean())
            effect = difference / pooled if pooled else None
            result["effect_size"] = finite_or_none(effect)
    return result
