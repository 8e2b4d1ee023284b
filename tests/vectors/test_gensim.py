"""EmbeddingTable against gensim's KeyedVectors on the same vectors: a
trained run's tables, exported to word2vec text by ``seqembed export`` and
loaded by both. Same neighbours, same order, same cosines, same odd one out."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import seqembed as run_cli

import seqembed
from seqembed.vectors.wordvectors import read_vectors

gensim_models = pytest.importorskip("gensim.models")

COSINE = 1e-6


@pytest.fixture(scope="module")
def both(builtin_run, tmp_path_factory):
    """(seqembed's table, gensim's KeyedVectors) of the run's source side,
    both read from one word2vec export, and the run's own table."""
    path = tmp_path_factory.mktemp("export") / "src.vec"
    result = run_cli("export", builtin_run, "--format", "word2vec", "--out", path)
    assert result.returncode == 0, result.stderr
    ours = read_vectors(path).table
    theirs = gensim_models.KeyedVectors.load_word2vec_format(str(path))
    return ours, theirs, seqembed.load_run(builtin_run).src


def assert_same(ours: list[tuple], theirs: list[tuple]) -> None:
    assert [w for w, *_ in ours] == [w for w, _ in theirs]
    for (_, a, *_), (_, b) in zip(ours, theirs):
        assert a == pytest.approx(b, abs=COSINE)


def words(table, n: int) -> list[str]:
    return table.index_to_key[:n]


def test_the_export_holds_the_run_table_exactly(both):
    ours, theirs, run_table = both
    assert ours.index_to_key == run_table.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(ours.vectors, run_table.vectors)
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)
    assert ours.key_to_index == theirs.key_to_index
    word = ours.index_to_key[7]
    np.testing.assert_array_equal(ours[word], theirs[word])
    np.testing.assert_array_equal(ours[[word, "好"]], theirs[[word, "好"]])
    assert word in ours and "量子" not in ours


@pytest.mark.parametrize("topn", [1, 10, 50])
def test_most_similar_of_one_word_matches_gensim(both, topn):
    ours, theirs, run_table = both
    for word in words(ours, 40):
        expected = theirs.most_similar(word, topn=topn)
        assert_same(ours.most_similar(word, topn=topn), expected)
        assert_same(run_table.most_similar(word, topn=topn), expected)


def test_analogies_weights_and_vectors_match_gensim(both):
    ours, theirs, _ = both
    first = words(ours, 12)
    for a, b, c in itertools.islice(itertools.permutations(first, 3), 60):
        query = {"positive": [a, b], "negative": [c], "topn": 8}
        assert_same(ours.most_similar(**query), theirs.most_similar(**query))
        assert_same(
            ours.most_similar_cosmul(**query), theirs.most_similar_cosmul(**query)
        )
    weighted = {"positive": [(first[0], 2.0), first[1]], "negative": [(first[2], 0.5)]}
    assert_same(ours.most_similar(**weighted), theirs.most_similar(**weighted))
    vector = ours[first[3]] + 0.5 * ours[first[4]]
    assert_same(ours.most_similar([vector]), theirs.most_similar([vector]))
    assert_same(
        ours.most_similar(first[0], restrict_vocab=100),
        theirs.most_similar(first[0], restrict_vocab=100),
    )


def test_similarity_n_similarity_and_doesnt_match_match_gensim(both):
    ours, theirs, _ = both
    first = words(ours, 30)
    for a, b in itertools.combinations(first[:12], 2):
        assert ours.similarity(a, b) == pytest.approx(
            float(theirs.similarity(a, b)), abs=COSINE
        )
    for size in (3, 4, 6):
        for start in range(0, 24, 3):
            group = first[start : start + size]
            assert ours.doesnt_match(group) == theirs.doesnt_match(group)
            other = first[start + 1 : start + 1 + size]
            assert ours.n_similarity(group, other) == pytest.approx(
                float(theirs.n_similarity(group, other)), abs=COSINE
            )


def test_evaluate_word_pairs_matches_gensim(both, tmp_path):
    ours, theirs, _ = both
    first = words(ours, 40)
    rng = np.random.default_rng(0)
    lines = ["# word1\tword2\tscore: made-up human judgements"]
    for a, b in itertools.islice(itertools.combinations(first, 2), 120):
        lines.append(f"{a}\t{b}\t{rng.uniform(0, 10):.2f}")
    lines.append("量子\t天气\t3.0")  # out of vocabulary: counted, not scored
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    pearson, spearman, oov = ours.evaluate_word_pairs(path)
    g_pearson, g_spearman, g_oov = theirs.evaluate_word_pairs(str(path))
    assert pearson[0] == pytest.approx(g_pearson[0], abs=1e-6)
    assert pearson[1] == pytest.approx(g_pearson[1], rel=1e-4)
    assert spearman[0] == pytest.approx(g_spearman[0], abs=1e-6)
    assert spearman[1] == pytest.approx(g_spearman[1], rel=1e-4)
    assert oov == pytest.approx(g_oov) == pytest.approx(100 / 121)


def test_to_gensim_gives_the_same_keyed_vectors(both):
    ours, theirs, run_table = both
    kv = run_table.to_gensim()
    assert kv.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(kv.vectors, theirs.vectors)
    word = run_table.index_to_key[0]
    assert kv.get_vecattr(word, "count") == int(run_table.freqs[0]) > 0
    assert kv.most_similar(word, topn=5) == theirs.most_similar(word, topn=5)
