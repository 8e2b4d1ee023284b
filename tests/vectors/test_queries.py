"""EmbeddingTable's queries beyond gensim's: unknown words, chance levels,
word-pair files; checked on tables built here."""

from __future__ import annotations

import numpy as np
import pytest

from seqembed.errors import InputError, UnknownWordError
from seqembed.vectors.null import expected_top_scores, typical_cosine
from seqembed.vectors.table import EmbeddingTable


def random_table(n_words: int, dim: int, seed: int = 0, side="src") -> EmbeddingTable:
    rng = np.random.default_rng(seed)
    tokens = [f"w{i}" for i in range(n_words)]
    return EmbeddingTable(tokens, rng.standard_normal((n_words, dim)), side=side)


def test_an_unknown_word_is_a_key_error_naming_word_side_and_size():
    table = random_table(378, 8)
    calls = [
        lambda: table["量子"],
        lambda: table[["w1", "量子"]],
        lambda: table.most_similar("量子"),
        lambda: table.most_similar(positive=["w1"], negative=["量子"]),
        lambda: table.most_similar_cosmul(positive=["量子"]),
        lambda: table.similarity("w1", "量子"),
        lambda: table.n_similarity(["w1"], ["量子"]),
        lambda: table.doesnt_match(["w1", "w2", "量子"]),
        lambda: table.vector("量子"),
    ]
    for call in calls:
        with pytest.raises(UnknownWordError) as raised:
            call()
        error = raised.value
        assert isinstance(error, KeyError) and isinstance(error, InputError)
        assert str(error) == "'量子' is not in the src vocabulary (378 words)"
        assert (error.word, error.side, error.n_words) == ("量子", "src", 378)
    unnamed = EmbeddingTable(["a", "b"], np.eye(2))
    with pytest.raises(KeyError, match="'c' is not in the vocabulary \\(2 words\\)"):
        unnamed["c"]


def test_chance_levels_are_the_cosines_random_vectors_have_at_each_rank():
    table = random_table(500, 32)
    plain = table.most_similar("w3", topn=15)
    with_chance = table.most_similar("w3", topn=15, chance=True)
    assert [(w, c) for w, c, _ in with_chance] == plain
    chance = [r for _, _, r in with_chance]
    assert chance == expected_top_scores(15, 499, 32)  # the analysis' null
    assert all(a > b for a, b in zip(chance, chance[1:]))
    # similarity(chance=True): the chance level at the rank b holds for a.
    for rank, (word, cosine) in enumerate(plain, start=1):
        value, level = table.similarity("w3", word, chance=True)
        assert value == pytest.approx(cosine, abs=1e-6)
        assert level == pytest.approx(typical_cosine(rank, 499, 32))


def test_random_tables_meet_their_chance_level():
    """On vectors that learned nothing, the k-th neighbour's cosine is the
    chance level of rank k: its median over many queries is close to it."""
    table = random_table(2000, 64, seed=1)
    queries = [f"w{i}" for i in range(0, 2000, 10)]
    found = np.array([[c for _, c in table.most_similar(q, topn=20)] for q in queries])
    levels = [r for _, _, r in table.most_similar("w0", topn=20, chance=True)]
    for k in (0, 4, 19):
        assert np.median(found[:, k]) == pytest.approx(levels[k], abs=0.01)


def test_most_similar_leaves_out_query_words_and_takes_restrict_vocab():
    table = random_table(50, 6)
    best = table.most_similar(positive=["w1", "w2"], negative=["w3"], topn=100)
    assert len(best) == 47 and {"w1", "w2", "w3"}.isdisjoint(w for w, _ in best)
    assert table.most_similar("w1", topn=0) == []
    restricted = table.most_similar("w1", topn=100, restrict_vocab=10)
    assert {w for w, _ in restricted} == {f"w{i}" for i in range(10)} - {"w1"}
    # The older spelling most_similar(word, k) still means topn=k.
    assert table.most_similar("w1", 4) == table.most_similar("w1", topn=4)


def test_evaluate_word_pairs_reads_the_file_and_names_a_bad_line(tmp_path):
    table = EmbeddingTable(
        ["cat", "dog", "car", "Tree"],
        np.array([[1.0, 0.1], [0.9, 0.2], [0.0, 1.0], [0.5, 0.5]]),
    )
    path = tmp_path / "sim.tsv"
    path.write_text(
        "# gold\ncat\tdog\t9\ncat\tcar\t1\nDOG\tCAR\t2\ntree\tcat\t5\nx\ty\t4\n",
        encoding="utf-8",
    )
    pearson, spearman, oov = table.evaluate_word_pairs(path)
    assert spearman[0] == pytest.approx(1.0)  # gold and cosines in one order
    assert oov == pytest.approx(20.0)  # x-y of 5 pairs
    assert -1 <= pearson[0] <= 1
    with pytest.raises(InputError, match="only 2 of the file.s pairs"):
        table.evaluate_word_pairs(path, case_insensitive=False)
    path.write_text("cat\tdog\t9\ncat dog 3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"sim.tsv:2: expected word1"):
        table.evaluate_word_pairs(path)
