"""Embedding movement on snapshots whose movement we know, and on a real run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from seqembed.analysis.movement import (
    EmbeddingMovement,
    query_neighbours,
    snapshot_paths,
)
from seqembed.analysis.similarity import neighbour_ids
from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint

N_SPECIALS = len(SPECIALS)


def vocab_for(n_words: int, freqs: list[int] | None = None) -> dict:
    freqs = freqs if freqs is not None else [1] * n_words
    return {
        "tokens": list(SPECIALS) + [f"w{i}" for i in range(n_words)],
        "freqs": [0] * N_SPECIALS + list(freqs),
    }


def write_snapshots(run_dir, words_by_epoch: dict[int, np.ndarray]) -> None:
    """Snapshots as training writes them: float16, specials first (zero rows,
    which must not disturb anything since specials are never analysed)."""
    folder = run_dir / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    for epoch, words in words_by_epoch.items():
        specials = np.zeros((N_SPECIALS, words.shape[1]), np.float32)
        matrix = torch.from_numpy(np.concatenate([specials, words])).half()
        snapshot = {"epoch": epoch, "src": matrix, "tgt": matrix.clone()}
        torch.save(snapshot, folder / f"epoch-{epoch:04d}.pt")


def random_words(n_words: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Rounded to float16 first, so scaling by 2 below is exact.
    return rng.standard_normal((n_words, dim)).astype(np.float16).astype(np.float32)


def as_json(movement: EmbeddingMovement) -> dict:
    return json.loads(json.dumps(movement.to_dict(), allow_nan=False))


def test_doubling_every_epoch_is_a_step_of_one_and_keeps_all_neighbours(tmp_path):
    words = random_words(60, 16, seed=0)
    write_snapshots(tmp_path, {e: words * 2.0**e for e in range(5)})
    movement = EmbeddingMovement(k=10).fit(tmp_path, vocab=vocab_for(60))

    assert list(movement.epochs_) == [0, 1, 2, 3, 4]
    assert math.isnan(movement.step_mean_[0])
    np.testing.assert_allclose(movement.step_mean_[1:], 1.0, rtol=1e-6)
    np.testing.assert_allclose(movement.step_median_[1:], 1.0, rtol=1e-6)
    # ||2^e v - v|| / ||v|| = 2^e - 1
    np.testing.assert_allclose(movement.from_initial_mean_, [0, 1, 3, 7, 15], 1e-6)
    np.testing.assert_allclose(movement.from_initial_median_, [0, 1, 3, 7, 15], 1e-6)
    # Cosine ignores length: every neighbour list is the same at every epoch.
    np.testing.assert_array_equal(movement.overlap_previous_[1:], 1.0)
    np.testing.assert_array_equal(movement.overlap_final_, 1.0)
    assert movement.neighbours_stable_epoch_ == 0
    assert movement.movement_settled_epoch_ is None  # never below 1% a step
    assert movement.tokens_ == [f"w{i}" for i in range(60)]


def test_a_rotation_moves_every_word_by_the_chord_of_its_angle(tmp_path):
    # Rotating each coordinate pair by theta moves every vector by
    # 2 sin(theta / 2) of its length and changes no cosine.
    theta, n_epochs = 0.05, 6
    words = random_words(80, 8, seed=1)
    snapshots = {}
    for epoch in range(n_epochs):
        angle = epoch * theta
        x, y = words[:, 0::2], words[:, 1::2]
        rotated = np.empty_like(words)
        rotated[:, 0::2] = np.cos(angle) * x - np.sin(angle) * y
        rotated[:, 1::2] = np.sin(angle) * x + np.cos(angle) * y
        snapshots[epoch] = rotated
    write_snapshots(tmp_path, snapshots)
    movement = EmbeddingMovement(k=5, settled_step=0.06).fit(
        tmp_path, vocab=vocab_for(80)
    )

    chord = 2 * np.sin(theta / 2)
    # float16 snapshots: each value carries a relative error of up to ~5e-4.
    np.testing.assert_allclose(movement.step_mean_[1:], chord, atol=2e-3)
    expected = 2 * np.sin(np.arange(n_epochs) * theta / 2)
    np.testing.assert_allclose(movement.from_initial_median_, expected, atol=2e-3)
    assert movement.overlap_final_.min() >= 0.95
    # Steps of 0.05 are below settled_step = 0.06 from the first one on.
    assert movement.movement_settled_epoch_ == 0


def test_a_freeze_after_epoch_3_is_found_by_both_rules(tmp_path):
    n_words = 200
    snapshots = {e: random_words(n_words, 16, seed=10 + e) for e in range(4)}
    snapshots.update({e: snapshots[3] for e in range(4, 8)})
    write_snapshots(tmp_path, snapshots)
    movement = EmbeddingMovement(k=10).fit(tmp_path, vocab=vocab_for(n_words))

    assert movement.neighbours_stable_epoch_ == 3
    assert movement.movement_settled_epoch_ == 3
    # Independent random vectors share about chance = 10 / 199 of neighbours.
    assert movement.overlap_final_[:3].max() < 0.2
    np.testing.assert_array_equal(movement.overlap_final_[3:], 1.0)
    np.testing.assert_array_equal(movement.overlap_previous_[4:], 1.0)
    np.testing.assert_array_equal(movement.step_mean_[4:], 0.0)
    assert movement.step_mean_[1:4].min() > 1.0  # unrelated vectors: ~sqrt(2)
    result = as_json(movement)
    assert result["chance_overlap"] == pytest.approx(10 / 199)
    assert result["neighbours_stable_epoch"] == 3
    assert [row["epoch"] for row in result["epochs"]] == list(range(8))


def test_stability_needs_to_last_to_the_end(tmp_path):
    # Lists agree with the final ones at epoch 1, drift away at 2, come back
    # at 3: the stable epoch is 3, not 1.
    a, b = random_words(100, 16, seed=2), random_words(100, 16, seed=3)
    write_snapshots(tmp_path, {0: b, 1: a, 2: b, 3: a, 4: a})
    movement = EmbeddingMovement().fit(tmp_path, vocab=vocab_for(100))
    assert movement.overlap_final_[1] == 1.0
    assert movement.neighbours_stable_epoch_ == 3
    assert movement.movement_settled_epoch_ == 3


def test_a_change_in_the_last_step_means_not_settled(tmp_path):
    a, b = random_words(50, 8, seed=4), random_words(50, 8, seed=5)
    write_snapshots(tmp_path, {0: a, 1: a, 2: a, 3: b})
    movement = EmbeddingMovement().fit(tmp_path, vocab=vocab_for(50))
    assert movement.neighbours_stable_epoch_ is None
    assert movement.movement_settled_epoch_ is None


def test_only_the_chosen_words_are_analysed(tmp_path):
    # Frequent words (freq 2) stay put, rare ones (freq 1) move.
    n_words = 40
    freqs = [2] * 20 + [1] * 20
    base = random_words(n_words, 8, seed=6)
    snapshots = {}
    for epoch in range(4):
        words = base.copy()
        words[20:] = random_words(20, 8, seed=100 + epoch)
        snapshots[epoch] = words
    write_snapshots(tmp_path, snapshots)
    vocab = vocab_for(n_words, freqs)

    frequent = EmbeddingMovement(min_freq=2).fit(tmp_path, vocab=vocab)
    assert frequent.tokens_ == [f"w{i}" for i in range(20)]
    np.testing.assert_array_equal(frequent.step_mean_[1:], 0.0)
    assert frequent.movement_settled_epoch_ == 0
    assert frequent.neighbours_stable_epoch_ == 0

    everyone = EmbeddingMovement(min_freq=1).fit(tmp_path, vocab=vocab)
    assert len(everyone.tokens_) == n_words
    assert everyone.step_mean_[1] > 0.3

    chosen = EmbeddingMovement(only=["w25", "<PAD>", "w3", "nope"], k=10)
    chosen.fit(tmp_path, vocab=vocab)
    assert chosen.tokens_ == ["w25", "w3"]  # specials and unknown words dropped
    assert chosen.k_ == 1
    assert chosen.to_dict()["chance_overlap"] == 1.0


def test_snapshots_every_other_epoch_step_from_the_previous_snapshot(tmp_path):
    words = random_words(30, 8, seed=7)
    write_snapshots(tmp_path, {0: words, 2: words * 2, 4: words * 4})
    movement = EmbeddingMovement().fit(tmp_path, vocab=vocab_for(30))
    assert list(movement.epochs_) == [0, 2, 4]
    np.testing.assert_allclose(movement.step_mean_[1:], [1.0, 1.0])
    np.testing.assert_allclose(movement.from_initial_mean_, [0.0, 1.0, 3.0])


def test_a_single_snapshot(tmp_path):
    write_snapshots(tmp_path, {0: random_words(20, 8, seed=8)})
    result = as_json(EmbeddingMovement().fit(tmp_path, vocab=vocab_for(20)))
    assert result["epochs"] == [
        {
            "epoch": 0,
            "step_mean": None,
            "step_median": None,
            "from_initial_mean": 0.0,
            "from_initial_median": 0.0,
            "overlap_previous": None,
            "overlap_final": 1.0,
        }
    ]
    assert result["initial_epoch"] == result["final_epoch"] == 0
    assert result["neighbours_stable_epoch"] is None
    assert result["movement_settled_epoch"] is None


def test_one_word_has_no_neighbours(tmp_path):
    write_snapshots(tmp_path, {0: np.ones((1, 4)), 1: 2 * np.ones((1, 4))})
    result = as_json(EmbeddingMovement().fit(tmp_path, vocab=vocab_for(1)))
    assert result["k"] == 0 and result["chance_overlap"] is None
    assert result["epochs"][1]["overlap_final"] is None
    assert result["epochs"][1]["step_mean"] == pytest.approx(1.0)


def test_no_snapshots_names_the_folder(tmp_path):
    with pytest.raises(InputError, match="no embedding snapshots") as error:
        EmbeddingMovement().fit(tmp_path, vocab=vocab_for(3))
    assert str(tmp_path / "embeddings") in str(error.value)
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no embedding snapshots"):
        snapshot_paths(tmp_path)


def test_a_vocabulary_size_mismatch_names_the_snapshot(tmp_path):
    write_snapshots(tmp_path, {0: random_words(10, 4, seed=9)})
    with pytest.raises(InputError, match="10 words|14 rows") as error:
        EmbeddingMovement().fit(tmp_path, vocab=vocab_for(12))
    assert "epoch-0000.pt" in str(error.value)

    # An earlier snapshot of another size (the vocabulary matches the last).
    write_snapshots(tmp_path, {1: random_words(12, 4, seed=9)})
    with pytest.raises(InputError, match="14 rows") as error:
        EmbeddingMovement().fit(tmp_path, vocab=vocab_for(12))
    assert "epoch-0000.pt" in str(error.value)


def test_a_truncated_snapshot_is_an_input_error(tmp_path):
    write_snapshots(tmp_path, {0: random_words(10, 4, seed=9)})
    path = tmp_path / "embeddings" / "epoch-0000.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="cannot read embedding snapshot"):
        EmbeddingMovement().fit(tmp_path, vocab=vocab_for(10))


def test_query_neighbours_agree_with_neighbour_ids():
    unit = random_words(300, 12, seed=11)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    everyone = neighbour_ids(unit, 7)
    queries = np.array([0, 5, 17, 299])
    np.testing.assert_array_equal(query_neighbours(unit, queries, 7), everyone[queries])


def test_sampled_queries_estimate_the_full_overlap(tmp_path):
    base = random_words(400, 16, seed=12)
    noise = random_words(400, 16, seed=13)
    write_snapshots(tmp_path, {e: base + 0.3 * e * noise for e in range(3)})
    vocab = vocab_for(400)
    full = EmbeddingMovement(n_queries=None).fit(tmp_path, vocab=vocab)
    sampled = EmbeddingMovement(n_queries=150, random_state=1).fit(tmp_path, vocab)
    assert len(sampled.query_ids_) == 150 and len(full.query_ids_) == 400
    np.testing.assert_allclose(sampled.overlap_final_, full.overlap_final_, atol=0.05)
    # Movement uses every word, sampled or not.
    np.testing.assert_array_equal(sampled.step_mean_, full.step_mean_)


@pytest.mark.parametrize("side", ["src", "tgt"])
def test_the_seed_run_end_to_end(seed_run, side):
    movement = EmbeddingMovement(side=side, k=5).fit(seed_run)
    vocab = load_checkpoint(seed_run)[f"{side}_vocab"]
    words = [
        token
        for token, freq in zip(vocab["tokens"], vocab["freqs"])
        if freq >= 1 and token not in SPECIALS
    ]
    assert movement.tokens_ == words

    # The same numbers, computed directly from every snapshot.
    paths = sorted((seed_run / "embeddings").glob("epoch-*.pt"))
    rows = [vocab["tokens"].index(token) for token in words]
    matrices = [
        torch.load(path, weights_only=True)[side].float().numpy()[rows]
        for path in paths
    ]
    assert list(movement.epochs_) == list(range(len(paths)))

    def unit(m):
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    final_lists = neighbour_ids(unit(matrices[-1]), 5)
    for e in range(1, len(matrices)):
        before, after = matrices[e - 1], matrices[e]
        moved = np.linalg.norm(after - before, axis=1) / np.linalg.norm(before, axis=1)
        assert movement.step_mean_[e] == pytest.approx(moved.mean(), rel=1e-5)
        assert movement.step_median_[e] == pytest.approx(np.median(moved), rel=1e-5)
        lists = neighbour_ids(unit(after), 5)
        shared = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(lists, final_lists)])
        assert movement.overlap_final_[e] == pytest.approx(shared)

    assert movement.from_initial_mean_[0] == 0.0
    assert (movement.step_mean_[1:] > 0).all()  # training moved every epoch
    result = as_json(movement)
    assert result["side"] == side
    assert result["n_words"] == len(words)
    assert result["final_epoch"] == len(paths) - 1
