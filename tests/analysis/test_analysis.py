"""EmbeddingAnalysis on vectors whose structure we know: random vectors must
come out "not above chance", planted structure must be found, and a random
table with a common shape must not pass for a trained one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqembed.analysis.cohesion import MIN_BIN_WORDS, frequency_bins
from seqembed.analysis.embedding import EmbeddingAnalysis
from seqembed.vectors.table import EmbeddingTable

torch.set_num_threads(1)


def tokens_for(n_words: int) -> list[str]:
    return [f"w{i}" for i in range(n_words)]


def random_case(seed: int, n_words: int = 60, dim: int = 32):
    """Random Gaussian vectors (trained and initial), Zipfian frequencies,
    random groups, random sentences and random chosen pairs: nothing to find."""
    rng = np.random.default_rng(seed)
    tokens = tokens_for(n_words)
    freqs = rng.zipf(1.5, size=n_words).clip(max=10_000)
    table = EmbeddingTable(tokens, rng.standard_normal((n_words, dim)), freqs)
    initial = EmbeddingTable(tokens, rng.standard_normal((n_words, dim)), freqs)
    shuffled = [str(t) for t in rng.permutation(tokens)]
    groups = {f"g{g}": shuffled[8 * g : 8 * g + 8] for g in range(4)}
    sentences = [
        [str(t) for t in rng.choice(tokens, size=rng.integers(3, 8))] for _ in range(40)
    ]
    chosen = [tuple(str(t) for t in rng.choice(tokens, 2, replace=False))]
    return table, initial, groups, sentences, chosen * 3


def clustered_case(seed: int, n_clusters: int = 5, size: int = 12, dim: int = 32):
    """Words in clusters around random centres; sentences drawn within one
    cluster, so words that share a sentence are also similar."""
    rng = np.random.default_rng(seed)
    label = np.repeat(np.arange(n_clusters), size)
    centres = rng.standard_normal((n_clusters, dim))
    vectors = centres[label] + rng.standard_normal((len(label), dim))
    tokens = [f"c{c}w{i}" for i, c in enumerate(label)]
    table = EmbeddingTable(tokens, vectors, rng.integers(1, 200, size=len(label)))
    groups = {
        f"cluster{c}": [t for t, of in zip(tokens, label) if of == c]
        for c in range(n_clusters)
    }
    names = list(groups)
    sentences = [
        [str(t) for t in rng.choice(groups[rng.choice(names)], 4, replace=False)]
        for _ in range(60)
    ]
    return table, groups, sentences, label


def anisotropic_table(seed: int, n_words: int, dim: int) -> EmbeddingTable:
    """Gaussian rows with a random covariance of 3 large eigenvalues (x100
    the rest) and a common mean direction: the shape trained tables have,
    and nothing else."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    scales = np.ones(dim)
    scales[:3] = 10.0
    vectors = (rng.standard_normal((n_words, dim)) * scales) @ basis.T
    vectors += 0.5 * rng.standard_normal(dim)
    return EmbeddingTable(
        tokens_for(n_words), vectors, rng.integers(1, 100, size=n_words)
    )


def above(analysis: EmbeddingAnalysis, figure: str) -> list:
    return [f for f in analysis.findings_ if f.figure == figure and f.above_chance]


# --------------------------------------------------- nothing to find


@pytest.mark.slow
def test_random_vectors_are_not_above_chance():
    """Family-wise control. Every table is one family of ~31 tests adjusted
    by Holm at 0.05, so a table has any finding above chance with
    probability <= 0.05, and the number of such tables among 20 is at most
    Binomial(20, 0.05): P(>= 4) = 0.016. (Measured over 200 tables: 3.5%.)"""
    flagged = []
    for seed in range(20):
        table, initial, groups, sentences, chosen = random_case(seed)
        analysis = EmbeddingAnalysis(n_permutations=300, random_state=seed).fit(
            table, initial, groups, sentences, chosen
        )
        # top pairs, groups, co-occurrence, chosen pairs, two outlier rates and
        # the most extreme norm, norm against frequency
        assert len(analysis.findings_) == 20 + 4 + 1 + 3 + 2 + 1 + 1
        if any(f.above_chance for f in analysis.findings_):
            flagged.append(seed)
    assert len(flagged) <= 3, flagged


# ----------------------------------------------------- planted structure


def test_planted_clusters_are_found():
    table, groups, sentences, label = clustered_case(0)
    outlier = 7
    vectors = table.vectors.copy()
    vectors[outlier] *= 5
    table = EmbeddingTable(table.tokens, vectors, table.freqs)  # norms afresh
    analysis = EmbeddingAnalysis(random_state=0).fit(
        table, groups=groups, sentences=sentences
    )
    result = analysis.result_

    for group in result["groups"]["groups"]:
        assert group["within"] > group["chance_within"] + 0.2
        assert group["p_value"] == pytest.approx(1 / 1001)  # no random set as close
        assert group["within"] > group["between"]
    assert result["groups"]["frequency_matched"]
    assert len(above(analysis, "groups")) == len(groups)

    co = result["cooccurrence"]
    assert co["frequency_matched"] and co["difference"] > 0.2
    assert co["cooccurring_mean"] > co["never_mean"]
    assert len(above(analysis, "cooccurrence")) == 1

    # The most similar pairs are pairs within one cluster, all above chance.
    index = table.index
    for pair in result["similar_pairs"]["pairs"]:
        assert label[index[pair["a"]]] == label[index[pair["b"]]]
    assert len(above(analysis, "similar_pairs")) == analysis.top_n

    for rule in ("std_rule", "mad_rule"):
        candidates = result["outliers"][rule]["candidates"]
        assert [c["word"] for c in candidates] == [table.tokens[outlier]]


def test_planted_cooccurrence_without_clusters_in_the_vectors_is_not_found():
    """The same sentences over random vectors: co-occurrence is no evidence."""
    table, groups, sentences, _ = clustered_case(1)
    rng = np.random.default_rng(1)
    table = EmbeddingTable(
        table.tokens, rng.standard_normal(table.vectors.shape), table.freqs
    )
    analysis = EmbeddingAnalysis(random_state=1).fit(
        table, groups=groups, sentences=sentences
    )
    assert not above(analysis, "cooccurrence")
    assert not above(analysis, "groups")


def test_chosen_pairs_list_cosine_cooccurrences_and_missing_words():
    table, _, sentences, _ = clustered_case(2)
    a, b = table.tokens[0], table.tokens[1]
    analysis = EmbeddingAnalysis(random_state=0).fit(
        table, initial=table, sentences=sentences, chosen_pairs=[(a, b), (a, "zz")]
    )
    known, missing = analysis.result_["chosen_pairs"]
    assert known["cosine"] == pytest.approx(table.similarity(a, b))
    assert known["initial_cosine"] == pytest.approx(known["cosine"])
    assert known["cooccurrences"] == sum(1 for s in sentences if a in s and b in s)
    assert 0 < known["p_value"] <= 1
    assert missing["cosine"] is None and missing["missing"] == ["zz"]


# ------------------------------------------------------ the shaped null


def test_shaped_null_catches_random_tables_with_a_common_shape():
    """Random anisotropic tables (200 words in 32 dims, 19 shaped repeats):
    their top pairs are far above isotropic chance, yet random tables of the
    same mean and covariance match them, so they are not above chance.

    A pair must beat the best pair of all 19 shaped tables; any rank doing so
    means the table's best pair does, which has probability 1/20 for a table
    of that shape: a family-wise level of 0.05 over all ranks. So at most 2
    of 10 tables here (P(>= 3) = 0.012 at 5%)."""
    flagged = []
    for seed in range(10):
        analysis = EmbeddingAnalysis(random_state=seed).fit(
            anisotropic_table(seed, 200, 32)
        )
        pairs = [f for f in analysis.findings_ if f.figure == "similar_pairs"]
        assert analysis.result_["similar_pairs"]["shaped_null_repeats"] == 19
        assert all(f.p_adjusted <= analysis.alpha for f in pairs)  # isotropic
        assert all(f.value > f.chance + 0.2 for f in pairs)
        if any(f.above_chance for f in pairs):
            flagged.append(seed)
    assert len(flagged) <= 2, flagged


def test_shaped_null_does_not_hide_a_real_pair():
    table = anisotropic_table(0, 200, 32)
    table.vectors[1] = table.vectors[0] + 0.01 * table.vectors[2]
    analysis = EmbeddingAnalysis(random_state=0).fit(table)
    best = analysis.findings_[0]
    assert best.subject == "top pair #1 w0-w1"
    assert best.above_chance and best.value > best.shaped_chance


def test_no_shaped_null_below_four_words_per_dimension():
    analysis = EmbeddingAnalysis(random_state=0).fit(anisotropic_table(0, 100, 32))
    assert analysis.result_["similar_pairs"]["shaped_null_repeats"] == 0
    assert all(f.shaped_chance is None for f in analysis.findings_)


@pytest.mark.slow
def test_shaped_null_holds_for_large_tables():
    analysis = EmbeddingAnalysis(random_state=11).fit(anisotropic_table(11, 6_000, 64))
    pairs = [f for f in analysis.findings_ if f.figure == "similar_pairs"]
    assert np.mean([f.above_chance for f in pairs]) <= 0.25


# ------------------------------------------------------------- pieces


def test_frequency_bins_are_equal_count_and_follow_frequency():
    rng = np.random.default_rng(0)
    for n_words in (2 * MIN_BIN_WORDS, 55, 200, 1234):
        freqs = rng.zipf(1.3, size=n_words)  # many ties
        bins, matched = frequency_bins(freqs)
        counts = np.bincount(bins)
        assert matched
        assert len(counts) == min(10, n_words // MIN_BIN_WORDS)
        assert counts.max() - counts.min() <= 1
        order = np.lexsort((np.arange(n_words), freqs))
        assert np.all(np.diff(bins[order]) >= 0)  # never a rarer word higher

    bins, matched = frequency_bins(np.arange(2 * MIN_BIN_WORDS - 1))
    assert not matched and np.all(bins == 0)


def test_small_tables_compare_with_unmatched_random_sets():
    table, initial, groups, sentences, _ = random_case(0, n_words=30)
    result = (
        EmbeddingAnalysis(random_state=0).fit(table, initial, groups, sentences).result_
    )
    assert not result["groups"]["frequency_matched"]
    assert not result["cooccurrence"]["frequency_matched"]
    co = result["cooccurrence"]
    assert co["n_cooccurring"] + co["n_never"] == 30 * 29 // 2
    assert co["n_compared"][1] == co["n_never"]  # every never pair


def test_movement_from_identical_and_scaled_initial_vectors():
    table, *_ = random_case(3)
    same = EmbeddingAnalysis(random_state=0).fit(table, initial=table).result_
    assert same["movement"]["relative_change_mean"] == 0.0
    assert same["movement"]["similarity_correlation"] == pytest.approx(1.0)
    assert same["statistics"]["initial"] == same["statistics"]["overall"]

    # initial = 2 x trained: each vector moved half its initial length, and
    # no cosine changed.
    doubled = EmbeddingTable(table.tokens, 2 * table.vectors, table.freqs)
    moved = EmbeddingAnalysis(random_state=0).fit(table, initial=doubled).result_
    assert moved["movement"]["relative_change_median"] == pytest.approx(0.5)
    assert moved["movement"]["similarity_correlation"] == pytest.approx(1.0)
    assert EmbeddingAnalysis().fit(table).result_["movement"] is None


def test_statistics_agree_with_the_table():
    table, *_ = random_case(4)
    result = EmbeddingAnalysis(random_state=0).fit(table).result_
    overall = result["statistics"]["overall"]
    unit = table.unit_vectors().astype(np.float64)
    cosines = (unit @ unit.T)[np.triu_indices(len(table), 1)]
    assert overall["cosine_mean"] == pytest.approx(cosines.mean(), abs=1e-9)
    assert overall["cosine_max"] == pytest.approx(cosines.max(), abs=1e-6)
    assert overall["norm_mean"] == pytest.approx(table.norms.mean())
    bands = result["statistics"]["by_frequency"]
    assert sum(band["n_words"] for band in bands) == len(table)
    assert result["statistics"]["chance"]["cosine_std"] == pytest.approx(32**-0.5)


def test_fit_is_deterministic_given_random_state():
    table, initial, groups, sentences, chosen = random_case(5)

    def fitted(seed: int) -> str:
        analysis = EmbeddingAnalysis(n_permutations=200, random_state=seed)
        analysis.fit(table, initial, groups, sentences, chosen)
        return json.dumps(analysis.result_, sort_keys=True)

    assert fitted(0) == fitted(0)
    assert fitted(0) != fitted(1)  # the permutation nulls do use the seed


def test_fit_refuses_fewer_than_two_words():
    with pytest.raises(ValueError):
        EmbeddingAnalysis().fit(EmbeddingTable(["a"], np.ones((1, 4)), [1]))


def test_result_is_json_when_top_n_exceeds_the_number_of_pairs():
    table, initial, *_ = random_case(6, n_words=5)
    result = EmbeddingAnalysis(top_n=20).fit(table, initial).result_
    assert len(result["similar_pairs"]["pairs"]) == 10
    json.dumps(result, allow_nan=False)


def test_a_repeated_word_does_not_make_a_group_cohesive():
    table, *_ = random_case(0)
    words = ["w1", "w1", "w2", "w2", "w3", "w3"]
    analysis = EmbeddingAnalysis(random_state=0).fit(table, groups={"g": words})
    group = analysis.result_["groups"]["groups"][0]
    assert group["within"] == pytest.approx(
        EmbeddingAnalysis(random_state=0)
        .fit(table, groups={"g": ["w1", "w2", "w3"]})
        .result_["groups"]["groups"][0]["within"]
    )
