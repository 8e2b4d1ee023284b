"""Contextual states on the seed and built-in runs: real models, real torch."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from seqembed.analysis.contextual import ContextualStates, mean_cosine, self_similarity
from seqembed.analysis.words import is_content_word, training_sentences
from seqembed.data.prepare import read_splits
from seqembed.data.segment import ChineseSegmenter
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint, restore_model


@pytest.fixture(scope="module")
def seed_fit(seed_run):
    state = load_checkpoint(seed_run)
    return ContextualStates().fit(state, training_sentences(seed_run, state))


@pytest.fixture(scope="module")
def builtin_fit(builtin_run):
    state = load_checkpoint(builtin_run)
    return ContextualStates().fit(state, training_sentences(builtin_run, state))


# ------------------------------------------------------------ planted vectors


def test_identical_states_have_self_similarity_one():
    states = np.tile(np.array([[0.3, -1.2, 2.0]]), (5, 1))
    assert self_similarity(states) == pytest.approx(1.0)
    assert mean_cosine(states, 3 * states) == pytest.approx(1.0)


def test_self_similarity_equals_the_mean_over_all_pairs():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(7, 4))
    states[3] = 0.0  # a zero state has cosine 0 with everything
    unit = [v / n if (n := np.linalg.norm(v)) else v for v in states]
    pairs = [unit[i] @ unit[j] for i in range(7) for j in range(i + 1, 7)]
    assert self_similarity(states) == pytest.approx(np.mean(pairs))
    assert self_similarity(np.array([[1.0, 0.0], [-2.0, 0.0]])) == pytest.approx(-1)
    assert self_similarity(states[:1]) is None
    assert mean_cosine(states[:0], states) is None


def test_token_only_encoder_gives_self_similarity_one(seed_run):
    """With no recurrent weights and a closed forget gate, a state depends on
    the current token alone, so every occurrence of a word has the same state."""
    state = load_checkpoint(seed_run)
    weights = {name: tensor.clone() for name, tensor in state["model"].items()}
    hidden = weights["encoder.lstm.weight_hh_l0"].shape[1]
    weights["encoder.lstm.weight_hh_l0"].zero_()
    weights["encoder.lstm.bias_ih_l0"][hidden : 2 * hidden] = -1e4  # gates i,f,g,o
    token_only = ContextualStates().fit(
        {**state, "model": weights}, training_sentences(seed_run, state)
    )
    for report in token_only.report(["很", "学习"]):
        assert report["self_similarity"] == pytest.approx(1.0, abs=1e-6)
        for context in report["nearest_contexts"] + report["farthest_contexts"]:
            assert context["cosine"] == pytest.approx(1.0, abs=1e-6)
    # The trained encoder reads the context: 机器 学习 and 深度 学习 differ.
    trained = ContextualStates().fit(state, training_sentences(seed_run, state))
    assert trained.word_report("学习")["self_similarity"] < 0.999


# ------------------------------------------------------------ seed run


def test_seed_counts_and_state_width(seed_fit):
    assert seed_fit.counts_["很"] == 3
    assert seed_fit.counts_["学习"] == 2
    states, occurrences = seed_fit.states("很")
    assert states.shape == (3, 128)  # model.hidden_size of the seed experiment
    assert seed_fit.summary()["directions"] == "forward"
    for row, position in occurrences:
        assert seed_fit.sentences_.tokens[row][position] == "很"


def test_states_are_the_encoder_memory_of_each_sentence_alone(seed_run, seed_fit):
    model, _, src_vocab, _ = restore_model(load_checkpoint(seed_run))
    states, occurrences = seed_fit.states("很")
    for state, (row, position) in zip(states, occurrences):
        ids = src_vocab.encode(seed_fit.sentences_.tokens[row])
        src = torch.tensor([ids])
        with torch.no_grad():
            source, _ = model.encode(src, torch.tensor([len(ids)]))
        np.testing.assert_allclose(state, source.memory[0, position], atol=1e-6)


def test_single_occurrence_gives_none_with_a_reason(seed_fit):
    report = seed_fit.word_report("我")
    assert report["n_occurrences"] == 1
    assert report["self_similarity"] is None
    assert report["difference"] is None
    assert "once" in report["reason"]
    assert len(report["nearest_contexts"]) == 1
    assert report["farthest_contexts"] == []
    json.dumps(report)


def test_unknown_and_special_words_are_clear_errors(seed_fit):
    with pytest.raises(InputError, match="not in the source vocabulary"):
        seed_fit.report(["很", "猫"])
    with pytest.raises(InputError, match="special token"):
        seed_fit.word_report("<UNK>")


def test_seed_default_words(seed_fit):
    assert seed_fit.default_words() == ["很", "学习"]


# ------------------------------------------------------------ built-in run


@pytest.mark.slow
def test_counts_match_the_segmented_training_data(builtin_run, builtin_fit):
    state = load_checkpoint(builtin_run)
    segmenter = ChineseSegmenter("jieba", state["user_dict"])
    counted = Counter(
        word
        for pair in read_splits(builtin_run)["train"]
        for word in segmenter(pair.src)
    )
    assert builtin_fit.counts_ == counted
    # The vocabulary was built from the same tokens (min_freq 1).
    vocab = state["src_vocab"]
    for token, freq in zip(vocab["tokens"][4:], vocab["freqs"][4:]):
        assert builtin_fit.counts_[token] == freq


def test_builtin_report_properties(builtin_fit):
    summary = builtin_fit.summary()
    assert summary["directions"] == "forward+backward"
    assert summary["state_size"] == 128
    words = builtin_fit.default_words()
    assert 0 < len(words) <= 10
    counts = [builtin_fit.counts_[w] for w in words]
    assert counts == sorted(counts, reverse=True) and min(counts) >= 2
    assert all(is_content_word(w) for w in words)
    reports = builtin_fit.report(words)
    json.dumps({"summary": summary, "words": reports}, ensure_ascii=False)
    for report in reports:
        word = report["word"]
        assert report["n_occurrences"] == builtin_fit.counts_[word]
        assert report["n_sampled"] == min(report["n_occurrences"], 200)
        assert -1 <= report["self_similarity"] <= 1
        assert -1 <= report["baseline"] <= 1
        assert report["difference"] == pytest.approx(
            report["self_similarity"] - report["baseline"]
        )
        assert len(report["static_neighbours"]) == 5
        assert word not in [n["word"] for n in report["static_neighbours"]]
        assert word not in [n["word"] for n in report["contextual_neighbours"]]
        nearest, farthest = report["nearest_contexts"], report["farthest_contexts"]
        assert len(nearest) == 3 and farthest
        for context in nearest + farthest:
            assert word in context["sentence"]
            assert context["tokens"][context["position"]] == word
        near = [c["cosine"] for c in nearest]
        far = [c["cosine"] for c in farthest]
        assert near == sorted(near, reverse=True)
        assert far == sorted(far)
        assert min(near) >= max(far)


@pytest.mark.slow
def test_sampling_is_deterministic_per_random_state(builtin_run):
    state = load_checkpoint(builtin_run)
    sentences = training_sentences(builtin_run, state)

    def fitted(seed):
        return ContextualStates(max_occurrences=5, n_baseline=50, random_state=seed)

    first = fitted(0).fit(state, sentences)
    again = fitted(0).fit(state, sentences)
    other = fitted(1).fit(state, sentences)
    assert first.counts_["很"] > 5
    assert first.word_report("很") == again.word_report("很")
    # A word's sample does not depend on the other words asked for.
    assert first.report(["学习", "很"])[1] == again.word_report("很")
    assert first.word_report("很")["n_sampled"] == 5
    assert first.states("很")[1] != other.states("很")[1]
    assert first.summary()["anisotropy"] != other.summary()["anisotropy"]


@pytest.mark.slow
def test_training_sentences_accepts_a_checkpoint_file(builtin_run):
    from_file = training_sentences(builtin_run / "last.pt")
    from_dir = training_sentences(builtin_run)
    assert from_file.tokens == from_dir.tokens
    assert from_file.texts == [p.src for p in read_splits(builtin_run)["train"]]
