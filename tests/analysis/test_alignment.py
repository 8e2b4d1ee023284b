"""Cross-lingual maps: planted structure is found, chance stays chance, the
split holds words out, and the CC-CEDICT lexicon reads real translations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqembed.analysis.alignment import (
    STATUS_OK,
    STATUS_TOO_SMALL,
    CrossLingualMap,
    alignment_report,
    normalize,
)
from seqembed.analysis.lexicon import cedict_lexicon, gloss_words, split_lexicon
from seqembed.data.vocab import SPECIALS
from seqembed.nmt.checkpoint import load_checkpoint, load_tables
from seqembed.vectors.table import EmbeddingTable


def table(prefix: str, vectors: np.ndarray) -> EmbeddingTable:
    """Special tokens (random rows, which retrieval must never return) and then
    words prefix0, prefix1, ... for the rows of ``vectors``."""
    rng = np.random.default_rng(99)
    specials = rng.normal(size=(len(SPECIALS), vectors.shape[1]))
    tokens = list(SPECIALS) + [f"{prefix}{i}" for i in range(len(vectors))]
    freqs = [0] * len(SPECIALS) + [5] * len(vectors)
    return EmbeddingTable(tokens, np.vstack([specials, vectors]), freqs)


def planted(n_words=300, dim=20, src_dim=None, noise=0.05, seed=0):
    """A source space and a target space that is a known linear image of it
    (a rotation when the dims agree), word s{i} <-> word t{i}."""
    rng = np.random.default_rng(seed)
    src_dim = src_dim or dim
    src = rng.normal(size=(n_words, src_dim))
    if src_dim == dim:
        linear, _ = np.linalg.qr(rng.normal(size=(dim, dim)))  # orthogonal
    else:
        linear = rng.normal(size=(src_dim, dim))
    tgt = src @ linear + noise * rng.normal(size=(n_words, dim))
    lexicon = [(f"s{i}", f"t{i}") for i in range(n_words)]
    return table("s", src), table("t", tgt), lexicon


def test_normalize_gives_centred_unit_rows():
    vectors = np.random.default_rng(0).normal(3.0, 1.0, size=(50, 8))
    normed = normalize(vectors)
    assert np.allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)
    # Centred before the last rescaling: the mean direction is nearly gone.
    assert np.linalg.norm(normed.mean(axis=0)) < 0.2


def test_planted_rotation_is_recovered_on_held_out_words():
    src, tgt, lexicon = planted()
    mapper = CrossLingualMap(random_state=0).fit(src, tgt, lexicon)
    assert mapper.method_ == "procrustes"
    scores = mapper.evaluate()
    assert scores["nn"]["p_at_1"] > 0.9
    assert scores["csls"]["p_at_1"] > 0.9
    # The fitted map is orthogonal.
    w = mapper.mapping_
    assert np.allclose(w.T @ w, np.eye(w.shape[1]), atol=1e-4)
    # Retrieval never returns a special token.
    translations = mapper.translate(["s0", "s1"], k=len(tgt))
    assert not set(SPECIALS) & {t for row in translations.values() for t in row}


def test_planted_linear_map_between_different_dims_uses_least_squares():
    src, tgt, lexicon = planted(src_dim=12, dim=24, noise=0.02)
    mapper = CrossLingualMap(random_state=1).fit(src, tgt, lexicon)
    assert mapper.method_ == "lstsq"
    assert mapper.mapping_.shape == (12, 24)
    scores = mapper.evaluate()
    assert scores["nn"]["p_at_1"] > 0.9
    assert scores["csls"]["p_at_1"] > 0.9


def test_unrelated_random_spaces_score_near_chance():
    rng = np.random.default_rng(5)
    src = table("s", rng.normal(size=(300, 20)))
    tgt = table("t", rng.normal(size=(300, 20)))
    lexicon = [(f"s{i}", f"t{i}") for i in range(300)]
    mapper = CrossLingualMap(random_state=0).fit(src, tgt, lexicon)
    scores = mapper.evaluate()
    chance = mapper.chance()
    assert chance["p_at_1"] == pytest.approx(1 / 300)
    assert chance["p_at_10"] == pytest.approx(10 / 300)
    # 60 held-out words: chance expects 0.2 right at 1 and 2 at 10.
    for retrieval in ("nn", "csls"):
        assert scores[retrieval]["p_at_1"] <= 0.05
        assert scores[retrieval]["p_at_10"] <= 0.15


def test_shuffled_lexicon_scores_near_chance_with_the_same_split():
    src, tgt, lexicon = planted()
    honest = CrossLingualMap(random_state=0).fit(src, tgt, lexicon)
    shuffled = CrossLingualMap(shuffle=True, random_state=0).fit(src, tgt, lexicon)
    assert shuffled.test_pairs_ == honest.test_pairs_
    assert sorted(shuffled.train_pairs_) == sorted(honest.train_pairs_)
    scores = shuffled.evaluate()
    for retrieval in ("nn", "csls"):
        assert scores[retrieval]["p_at_1"] <= 0.05
        assert scores[retrieval]["p_at_10"] <= 0.15


def test_split_is_by_source_word_and_deterministic():
    rng = np.random.default_rng(0)
    lexicon = [
        (f"zh{i}", f"en{j}") for i in range(40) for j in rng.choice(60, 3, False)
    ]
    train, test = split_lexicon(lexicon, test_fraction=0.25, random_state=7)
    assert len(train) + len(test) == len(lexicon)
    train_words = {zh for zh, _ in train}
    test_words = {zh for zh, _ in test}
    assert not train_words & test_words
    assert len(test_words) == 10
    assert split_lexicon(lexicon, 0.25, 7) == (train, test)
    # The input order does not matter, only the random state.
    again = split_lexicon(lexicon[::-1], 0.25, 7)
    assert {zh for zh, _ in again[1]} == test_words
    other = split_lexicon(lexicon, 0.25, 8)
    assert {zh for zh, _ in other[1]} != test_words


def test_gloss_words_keep_one_word_translations_only():
    assert gloss_words("to love") == ["love"]
    assert gloss_words(" to like") == ["like"]
    assert gloss_words("(bound form) not") == ["not"]
    assert gloss_words("a visit") == ["visit"]
    assert gloss_words("Mary or Marie (name)") == ["mary", "marie"]
    for not_one_word in (
        "to be fond of",
        "CL:個|个[ge4]",
        "variant of 愛|爱[ai4]",
        "surname Ai",
        "(completed action marker)",
        "also pr. [zhi1 dao5]",
        "un-",
    ):
        assert gloss_words(not_one_word) == []


@pytest.mark.slow
def test_cedict_lexicon_finds_real_translations_in_the_vocabularies():
    src_tokens = list(SPECIALS) + ["爱", "学习", "天气", "我", "。", "汤姆"]
    tgt_tokens = list(SPECIALS) + ["love", "study", "learn", "weather", "i", "."]
    lexicon = cedict_lexicon(src_tokens, tgt_tokens)
    assert ("爱", "love") in lexicon
    assert ("学习", "study") in lexicon or ("学习", "learn") in lexicon
    assert ("天气", "weather") in lexicon
    assert ("我", "i") in lexicon
    # Only words of both vocabularies: 汤姆 -> tom is in CC-CEDICT, not here.
    assert all(zh in src_tokens and en in tgt_tokens for zh, en in lexicon)
    assert not any(zh == "汤姆" or zh in SPECIALS for zh, _ in lexicon)
    assert len(lexicon) == len(set(lexicon))


def test_report_on_planted_spaces_has_the_documented_layout():
    src, tgt, lexicon = planted(n_words=200)
    rng = np.random.default_rng(3)
    out = table("t", rng.normal(size=(200, 30)))  # another dim: least squares
    initial = {
        "src": table("s", rng.normal(size=(200, 20))),
        "tgt": table("t", rng.normal(size=(200, 20))),
    }
    report = alignment_report(
        {"src": src, "tgt": tgt, "out": out}, initial, lexicon=lexicon
    )
    json.dumps(report)  # plain data
    assert report["status"] == STATUS_OK
    assert report["lexicon"]["n_test_words"] == 40
    assert report["lexicon"]["n_train_words"] == 160
    assert set(report["spaces"]) == {"tgt", "out"}
    tgt_space, out_space = report["spaces"]["tgt"], report["spaces"]["out"]
    assert tgt_space["method"] == "procrustes" and out_space["method"] == "lstsq"
    assert out_space["initial"] is None  # no initial "out" table given
    assert tgt_space["trained"]["csls"]["p_at_1"] > 0.9
    assert tgt_space["initial"]["nn"]["p_at_1"] <= 0.1
    assert tgt_space["shuffled"]["nn"]["p_at_1"] <= 0.1


def test_report_with_too_small_a_lexicon_says_so():
    src, tgt, lexicon = planted(n_words=30)
    report = alignment_report({"src": src, "tgt": tgt}, lexicon=lexicon)
    assert report["status"] == STATUS_TOO_SMALL
    assert report["spaces"] == {}
    assert "fewer than 10" in report["message"]
    json.dumps(report)
    # Every word was seen 5 times: asking for 6 leaves no pairs at all.
    src, tgt, lexicon = planted(n_words=200)
    report = alignment_report({"src": src, "tgt": tgt}, lexicon=lexicon, min_freq=6)
    assert report["status"] == STATUS_TOO_SMALL
    assert report["lexicon"]["n_pairs"] == 0


def check_scores(scores: dict) -> None:
    assert set(scores) == {"nn", "csls"}
    for precision in scores.values():
        assert set(precision) == {"p_at_1", "p_at_5", "p_at_10"}
        values = [precision["p_at_1"], precision["p_at_5"], precision["p_at_10"]]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert values == sorted(values)  # more candidates, never fewer hits


@pytest.mark.slow
def test_report_on_a_trained_run(builtin_run):
    state = load_checkpoint(builtin_run)
    report = alignment_report(load_tables(state), load_tables(state, initial=True))
    json.dumps(report)
    assert set(report) == {"status", "message", "settings", "lexicon", "spaces"}
    lexicon = report["lexicon"]
    assert lexicon["name"] == "CC-CEDICT"
    assert lexicon["n_train_pairs"] + lexicon["n_test_pairs"] == lexicon["n_pairs"]
    if report["status"] == STATUS_TOO_SMALL:
        pytest.skip(f"built-in corpus lexicon too small: {report['message']}")
    assert set(report["spaces"]) == {"tgt", "out"}
    for space in report["spaces"].values():
        assert 0.0 < space["chance"]["p_at_1"] < space["chance"]["p_at_10"] < 1.0
        check_scores(space["trained"])
        check_scores(space["shuffled"])
        if space["initial"] is not None:
            check_scores(space["initial"])
    # New checkpoints keep every initial table, the output projection's too.
    assert all(space["initial"] is not None for space in report["spaces"].values())
