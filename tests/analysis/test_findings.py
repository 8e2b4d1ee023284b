"""Each verdict is shown with the chance level and the p-value of the test
that decides it: a pair "not above chance" never carries a p below the
level, p grows as the rank gets worse, and every column says what it is."""

from __future__ import annotations

import numpy as np
import pytest

from seqembed.analysis.embedding import EmbeddingAnalysis
from seqembed.analysis.findings import NULLS
from seqembed.analysis.side_text import pairs_section, verdict_section
from seqembed.vectors.table import EmbeddingTable

VERDICT_COLUMNS = ["figure", "value", "chance level", "p", "tested against", "verdict"]


def anisotropic_table(seed: int, n_words: int = 200, dim: int = 32) -> EmbeddingTable:
    """A random table with a common shape (3 large directions, a common
    mean): its top pairs beat isotropic chance and nothing else."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    scales = np.ones(dim)
    scales[:3] = 10.0
    vectors = (rng.standard_normal((n_words, dim)) * scales) @ basis.T
    vectors += 0.5 * rng.standard_normal(dim)
    tokens = [f"w{i}" for i in range(n_words)]
    return EmbeddingTable(tokens, vectors, rng.integers(1, 100, size=n_words))


def side_data(analysis: EmbeddingAnalysis) -> dict:
    return {"side": "src", "words_from": "vocabulary", **analysis.result_}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_pairs_are_judged_by_the_shaped_null_they_are_shown_with(seed):
    analysis = EmbeddingAnalysis(random_state=seed).fit(anisotropic_table(seed))
    similar = analysis.result_["similar_pairs"]
    pairs = [f for f in analysis.findings_ if f.figure == "similar_pairs"]
    assert similar["shaped_null_repeats"] == 19
    for finding, pair in zip(pairs, similar["pairs"]):
        # Every pair beats isotropic chance here, so the shaped test decides.
        assert finding.p_adjusted <= analysis.alpha
        assert finding.verdict_null == NULLS["shaped"]
        assert finding.verdict_p == pair["shaped_p_value"]
        assert finding.verdict_chance == similar["shaped_best_median"]
        assert finding.above_chance == (finding.verdict_p <= analysis.alpha)
        # The share of shaped tables whose best pair is at least as similar.
        assert (finding.verdict_p * 20) == pytest.approx(round(finding.verdict_p * 20))
    shown_p = [f.verdict_p for f in pairs]
    assert shown_p == sorted(shown_p)  # a worse rank never looks more certain


def test_a_real_pair_passes_with_the_p_of_the_test_that_passed_it():
    table = anisotropic_table(0)
    table.vectors[1] = table.vectors[0] + 0.01 * table.vectors[2]
    analysis = EmbeddingAnalysis(random_state=0).fit(table)
    best = analysis.findings_[0]
    assert best.above_chance and best.verdict_p == pytest.approx(1 / 20)
    assert best.value > best.verdict_chance
    assert "above chance" in best.sentence(analysis.alpha)
    assert f"p = {best.verdict_p:.3g}" in best.sentence(analysis.alpha)


def test_without_a_shaped_null_the_adjusted_p_decides():
    analysis = EmbeddingAnalysis(random_state=0).fit(anisotropic_table(0, 100, 32))
    for finding in analysis.findings_:
        assert finding.verdict_p == finding.p_adjusted
        assert finding.verdict_chance == finding.chance
        assert finding.above_chance == (finding.p_adjusted <= analysis.alpha)
        assert finding.verdict_null == NULLS[finding.figure]


def test_the_verdict_table_labels_its_columns_and_agrees_with_itself():
    analysis = EmbeddingAnalysis(random_state=3).fit(anisotropic_table(3))
    section = verdict_section("source", side_data(analysis))
    assert section.columns == VERDICT_COLUMNS
    for row, finding in zip(section.rows, analysis.findings_):
        figure, _, chance_text, p_text, against, verdict = row
        assert figure == finding.subject and against == finding.verdict_null
        p = float(p_text)
        assert (verdict == "above chance") == (p <= analysis.alpha), row
        assert float(chance_text) == pytest.approx(finding.verdict_chance, abs=1e-4)
    # One chance level per cell: no "a / b" pairs of unlabelled numbers.
    assert not any("/" in row[2] for row in section.rows)


def test_the_pairs_table_keeps_the_isotropic_figures_as_labelled_extras():
    analysis = EmbeddingAnalysis(random_state=4).fit(anisotropic_table(4))
    section = pairs_section("source", side_data(analysis))
    assert section.columns[4:9] == [
        "chance level",
        "p",
        "verdict",
        "isotropic chance",
        "isotropic p",
    ]
    similar = analysis.result_["similar_pairs"]
    for row, pair in zip(section.rows, similar["pairs"]):
        assert float(row[5]) == pytest.approx(pair["shaped_p_value"], rel=1e-2)
        assert float(row[7]) == pytest.approx(pair["chance_cosine"], abs=1e-4)
