"""The chance levels against simulation: random vectors must look like the null
says they do, and p-values computed on them must not be small too often."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from seqembed.analysis import chance
from seqembed.analysis.similarity import scan_pairs
from seqembed.vectors import null


def random_unit(n_words: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((n_words, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def random_cosines(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Cosines of n independent pairs; lengths vary (Gaussian rows) on purpose:
    the cosine of isotropic vectors must not depend on them."""
    a = rng.standard_normal((n, dim)) * rng.uniform(0.1, 10, size=(n, 1))
    b = rng.standard_normal((n, dim))
    return (
        np.einsum("ij,ij->i", a, b)
        / np.linalg.norm(a, axis=1)
        / np.linalg.norm(b, axis=1)
    )


@pytest.mark.parametrize("dim", [8, 64])
def test_cosine_sf_matches_simulation(dim):
    cosines = random_cosines(20_000, dim, np.random.default_rng(dim))
    result = stats.kstest(cosines, lambda x: 1 - null.cosine_sf(x, dim))
    assert result.pvalue > 0.01
    assert cosines.std() == pytest.approx(1 / np.sqrt(dim), rel=0.03)
    for x in (0.1, 0.3, 0.5):
        assert np.mean(cosines > x) == pytest.approx(null.cosine_sf(x, dim), abs=0.01)
        assert np.mean(np.abs(cosines) >= x) == pytest.approx(
            chance.cosine_two_sided(x, dim), abs=0.01
        )
    assert chance.cosine_two_sided(0.0, dim) == 1.0


def test_expected_top_scores_match_simulated_medians():
    """Median of the k-th best pair cosine among 50 random words in 64 dims."""
    rng = np.random.default_rng(0)
    n_words, dim, k = 50, 64, 10
    tops = np.array(
        [
            [score for _, _, score in scan_pairs(random_unit(n_words, dim, rng), k)[1]]
            for _ in range(300)
        ]
    )
    n_pairs = n_words * (n_words - 1) // 2
    expected = null.expected_top_scores(k, n_pairs, dim)
    assert expected == sorted(expected, reverse=True)
    np.testing.assert_allclose(np.median(tops, axis=0), expected, atol=0.01)


def test_reference_top_scores_of_untrained_tables():
    """The issue's figures: the 10th best pair among 5,000 untrained rows."""
    n_pairs = 5_000 * 4_999 // 2
    assert null.expected_top_scores(10, n_pairs, 256)[-1] == pytest.approx(
        0.29, abs=0.01
    )
    assert null.expected_top_scores(10, n_pairs, 64)[-1] == pytest.approx(
        0.56, abs=0.01
    )
    # and one real 5,000 x 256 table agrees
    rng = np.random.default_rng(1)
    _, top = scan_pairs(random_unit(5_000, 256, rng), 10)
    assert top[-1][2] == pytest.approx(0.29, abs=0.02)


def test_expected_top_scores_stop_at_the_number_of_pairs():
    assert len(null.expected_top_scores(10, 3, 16)) == 3


def test_top_pair_pvalues_are_uniform_on_random_tables():
    rng = np.random.default_rng(2)
    n_words, dim, k = 40, 32, 5
    n_pairs = n_words * (n_words - 1) // 2
    pvalues = []
    for _ in range(400):
        summary, top = scan_pairs(random_unit(n_words, dim, rng), k)
        scores = [score for _, _, score in top]
        pvalues.append(chance.top_pair_pvalues(scores, summary.n_pairs, dim))
    pvalues = np.array(pvalues)  # (tables, k)
    assert pvalues.shape == (400, k) and n_pairs == 780
    # Each rank's p-value is (close to) uniform: small p-values as often as
    # their level, never much more (400 tables: 0.05 +- 0.011 binomial std).
    for level in (0.01, 0.05, 0.2):
        rates = np.mean(pvalues < level, axis=0)
        assert np.all(rates <= level + 0.04), (level, rates)
    assert stats.kstest(pvalues[:, 0], "uniform").pvalue > 0.01


def test_top_pair_pvalues_are_small_for_a_planted_pair():
    rng = np.random.default_rng(3)
    unit = random_unit(100, 64, rng)
    unit[1] = unit[0]
    summary, top = scan_pairs(unit, 2)
    pvalues = chance.top_pair_pvalues([s for *_, s in top], summary.n_pairs, 64)
    assert pvalues[0] < 1e-6
    assert pvalues[1] > 0.01  # the second pair is an ordinary one


def test_norm_moments_match_gaussian_rows():
    rng = np.random.default_rng(4)
    vectors = chance.random_table(5_000, 32, 0.3, rng)
    assert vectors.dtype == np.float32
    assert chance.coordinate_scale(vectors) == pytest.approx(0.3, rel=0.01)
    mean, std = chance.chi_norm_moments(32, 0.3)
    norms = np.linalg.norm(vectors, axis=1)
    assert norms.mean() == pytest.approx(mean, rel=0.01)
    assert norms.std() == pytest.approx(std, rel=0.05)
    assert chance.pairwise_cosine_chance(64) == (0.0, 0.125)


# ------------------------------------------------------ multiple testing


def test_holm_and_bh_against_hand_computed_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005 0.01 0.03 0.04 times 4 3 2 1 = 0.02 0.03 0.06 0.04,
    # then running maximum: 0.02 0.03 0.06 0.06.
    np.testing.assert_allclose(chance.adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    # BH: sorted p * 4 / rank = 0.02 0.02 0.04 0.04, running min from the top.
    np.testing.assert_allclose(chance.adjust(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(chance.adjust([0.5, 0.6, 0.7], "holm"), [1, 1, 1])
    np.testing.assert_allclose(chance.adjust([0.5, 0.6, 0.7], "bh"), [0.7] * 3)
    assert chance.adjust([], "holm") == []
    assert chance.adjust([0.2], "bh") == [0.2]
    with pytest.raises(ValueError, match="holm or bh"):
        chance.adjust([0.1], "bonferroni")


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjusted_pvalues_keep_order_and_stay_between_p_and_1(method):
    rng = np.random.default_rng(5)
    for _ in range(50):
        p = rng.uniform(size=rng.integers(1, 30)) ** 3
        adjusted = np.array(chance.adjust(list(p), method))
        assert np.all(adjusted >= p - 1e-15) and np.all(adjusted <= 1)
        order = np.argsort(p)
        assert np.all(np.diff(adjusted[order]) >= -1e-15)
    p = list(rng.uniform(size=20) ** 3)
    assert np.all(np.array(chance.adjust(p, "holm")) >= chance.adjust(p, "bh"))


def test_permutation_pvalue_is_never_zero_and_valid():
    null = np.arange(99, dtype=float)
    assert chance.permutation_pvalue(1e9, null) == pytest.approx(1 / 100)
    assert chance.permutation_pvalue(-1.0, null) == 1.0
    assert chance.permutation_pvalue(49.0, null) == pytest.approx(51 / 100)
    # Exchangeable observed value: P(p <= level) <= level.
    rng = np.random.default_rng(6)
    pvalues = [
        chance.permutation_pvalue(rng.standard_normal(), rng.standard_normal(99))
        for _ in range(2_000)
    ]
    for level in (0.01, 0.05, 0.1):
        assert np.mean(np.array(pvalues) <= level) <= level + 0.015
