"""EmbeddingTable and the chunked all-pairs scan, checked against brute force
in float64 on tables small enough to hold every pair."""

from __future__ import annotations

import numpy as np
import pytest

from seqembed.analysis.similarity import (
    CHUNK_ROWS,
    cosine_moments,
    neighbour_ids,
    scan_pairs,
)
from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError
from seqembed.vectors.table import EmbeddingTable, read_word_list


def unit_rows(n_words: int, dim: int, seed: int, n_zero: int = 0) -> np.ndarray:
    """Random unit rows (float32); the first ``n_zero`` rows are zero, as
    ``unit_vectors`` leaves a zero vector."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n_words, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[:n_zero] = 0.0
    return vectors.astype(np.float32)


def brute_force(unit: np.ndarray):
    """All cosines i < j in float64: (values, i, j)."""
    unit64 = unit.astype(np.float64)
    i, j = np.triu_indices(len(unit), 1)
    return np.einsum("ij,ij->i", unit64[i], unit64[j]), i, j


@pytest.mark.parametrize(
    ("n_words", "dim", "n_zero", "top_n"),
    [
        (2, 5, 0, 1),
        (40, 8, 0, 30),
        (300, 16, 3, 50),
        pytest.param(CHUNK_ROWS + 452, 16, 2, 100, marks=pytest.mark.slow),  # 2 blocks
    ],
)
def test_scan_pairs_equals_brute_force(n_words, dim, n_zero, top_n):
    unit = unit_rows(n_words, dim, seed=n_words, n_zero=n_zero)
    summary, top = scan_pairs(unit, top_n)
    values, i, j = brute_force(unit)

    assert summary.n_pairs == len(values) == n_words * (n_words - 1) // 2
    assert summary.mean == pytest.approx(values.mean(), abs=1e-9)
    assert summary.std == pytest.approx(values.std(), abs=1e-7)
    assert summary.min == pytest.approx(values.min(), abs=1e-6)
    assert summary.max == pytest.approx(values.max(), abs=1e-6)

    assert len(top) == top_n
    scores = np.array([s for _, _, s in top])
    assert np.all(np.diff(scores) <= 0)  # best first
    expected = np.sort(values)[::-1][:top_n]
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    # Each listed pair is a real pair i < j whose cosine is the listed score.
    unit64 = unit.astype(np.float64)
    for a, b, score in top:
        assert 0 <= a < b < n_words
        assert score == pytest.approx(unit64[a] @ unit64[b], abs=1e-6)
    assert len({(a, b) for a, b, _ in top}) == top_n


def test_scan_pairs_finds_pairs_that_straddle_blocks():
    """The best pairs planted across and inside blocks are all found."""
    unit = unit_rows(CHUNK_ROWS + 300, 16, seed=7)
    planted = [(5, CHUNK_ROWS + 10), (CHUNK_ROWS - 1, CHUNK_ROWS), (100, 101)]
    for a, b in planted:
        unit[b] = unit[a]
    _, top = scan_pairs(unit, 3)
    assert sorted((a, b) for a, b, _ in top) == sorted(planted)
    assert all(score == pytest.approx(1.0, abs=1e-6) for _, _, score in top)


def test_scan_pairs_with_top_n_beyond_the_number_of_pairs_lists_only_pairs():
    unit = unit_rows(3, 4, seed=1)
    _, top = scan_pairs(unit, 5)
    assert len(top) == 3
    assert all(a < b and np.isfinite(score) for a, b, score in top)


def test_scan_pairs_without_pairs():
    summary, top = scan_pairs(unit_rows(1, 4, seed=0), 10)
    assert summary.n_pairs == 0 and top == []
    assert np.isnan(summary.mean) and np.isnan(summary.max)


def test_cosine_moments_of_zero_rows_count_them_as_cosine_zero():
    unit = unit_rows(30, 6, seed=2, n_zero=30)
    count, mean, std = cosine_moments(unit)
    assert (count, mean, std) == (435, 0.0, 0.0)


@pytest.mark.parametrize(("n_words", "k"), [(50, 5), (CHUNK_ROWS + 100, 8), (4, 10)])
def test_neighbour_ids_equal_brute_force(n_words, k):
    unit = unit_rows(n_words, 12, seed=3)
    ids = neighbour_ids(unit, k)
    k = min(k, n_words - 1)
    assert ids.shape == (n_words, k)

    # Only the rows that matter: a sample of them for the large table.
    rows = np.random.default_rng(0).choice(
        n_words, size=min(n_words, 200), replace=False
    )
    scores = unit[rows].astype(np.float64) @ unit.astype(np.float64).T
    scores[np.arange(len(rows)), rows] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(ids[rows], expected)


# ------------------------------------------------------------ the table


def make_table() -> EmbeddingTable:
    tokens = list(SPECIALS) + ["the", "cat", "sat", "mat", "rare"]
    freqs = [0] * len(SPECIALS) + [50, 10, 5, 2, 1]
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((len(tokens), 6))
    vectors[tokens.index("mat")] = 2.5 * vectors[tokens.index("cat")]  # cosine 1
    return EmbeddingTable(tokens, vectors, freqs)


def test_words_exclude_specials_and_follow_min_freq_and_only():
    table = make_table()
    assert table.words().tokens == ["the", "cat", "sat", "mat", "rare"]
    assert table.words(min_freq=5).tokens == ["the", "cat", "sat"]
    assert table.words(include_specials=True).tokens == table.tokens
    # ``only``: in the order given, duplicates and unknown words dropped,
    # specials dropped unless asked for; min_freq does not apply.
    chosen = table.words(only=["rare", "cat", "zebra", "cat", "<UNK>"], min_freq=5)
    assert chosen.tokens == ["rare", "cat"]
    np.testing.assert_array_equal(chosen.vectors[1], table.vector("cat"))
    assert list(chosen.freqs) == [1, 10]
    assert chosen.index == {"rare": 0, "cat": 1}


def test_table_checks_shapes_and_normalises_zero_rows_to_zero():
    with pytest.raises(ValueError):
        EmbeddingTable(["a", "b"], np.zeros((3, 2)), [1, 1])
    with pytest.raises(ValueError):
        EmbeddingTable(["a", "b"], np.zeros((2, 2)), [1])
    table = EmbeddingTable(["a", "b"], np.array([[0.0, 0.0], [3.0, 4.0]]), [1, 1])
    np.testing.assert_allclose(table.unit_vectors(), [[0, 0], [0.6, 0.8]])
    assert table.vectors.dtype == np.float32
    assert table.similarity("a", "b") == 0.0


def test_most_similar_ranks_other_words_by_cosine():
    table = make_table().words()
    best = table.most_similar("cat", topn=10)
    assert [word for word, _ in best][0] == "mat"
    assert best[0][1] == pytest.approx(1.0, abs=1e-6)
    assert len(best) == len(table) - 1  # k capped; never the word itself
    assert "cat" not in [word for word, _ in best]
    scores = [score for _, score in best]
    assert scores == sorted(scores, reverse=True)
    for word, score in best:
        assert score == pytest.approx(table.similarity("cat", word), abs=1e-6)


def test_read_word_list_skips_comments(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(
        "猫 狗  # animals\n\n# a comment line\nthe\tcat\n", encoding="utf-8"
    )
    assert read_word_list(path) == ["猫", "狗", "the", "cat"]


def test_read_word_list_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("猫\n狗\n".encode() + b"the \xff cat\n")
    with pytest.raises(InputError, match=r"bad\.txt:3: not UTF-8") as caught:
        read_word_list(bad)
    assert caught.value.line == 3

    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no words"):
        read_word_list(empty)
    with pytest.raises(InputError, match="missing.txt"):
        read_word_list(tmp_path / "missing.txt")
