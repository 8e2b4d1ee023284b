"""Neighbour stability on real runs: the overlap of a word's neighbours with
its neighbours in the epochs before the checkpoint and in runs with other
seeds, checked against lists made another way (EmbeddingTable.most_similar
on the snapshot's own table)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import seqembed

from seqembed.analysis.movement import read_snapshot, snapshot_paths
from seqembed.analysis.trust import (
    EPOCHS_CHANGE,
    NOT_MEASURED,
    SEEDS_CHANGE,
    STABLE,
    NeighbourStability,
    describe,
    seed_runs,
)
from seqembed.cli.demo import demo_config, seed_pairs
from seqembed.nmt.checkpoint import load_checkpoint, load_tables
from seqembed.nmt.training import train
from seqembed.vectors.table import EmbeddingTable

K = 5


def tables_of(run):
    state = load_checkpoint(run)
    return state, load_tables(state)["src"].words()


def expected_epoch_overlap(run, state, table, word, epochs) -> float:
    """Mean over the epochs of |N(w) & N_e(w)| / k, each list from
    most_similar on that epoch's own table of the same words."""
    mine = {w for w, _ in table.most_similar(word, K)}
    vocab = state["src_vocab"]["tokens"]
    rows = [vocab.index(t) for t in table.tokens]
    paths = dict(snapshot_paths(run))
    shares = []
    for epoch in epochs:
        vectors = read_snapshot(paths[epoch], "src", len(vocab))[rows]
        theirs = EmbeddingTable(table.tokens, vectors, table.freqs)
        shares.append(len(mine & {w for w, _ in theirs.most_similar(word, K)}) / K)
    return float(np.mean(shares))


def test_epochs_before_the_checkpoint_are_compared(builtin_run):
    state, table = tables_of(builtin_run)
    words = table.tokens[:30]
    trust = NeighbourStability(k=K).fit(builtin_run, "src", table, words, state)
    epoch = state["counters"]["epoch"] - 1  # saved after this epoch
    assert trust.epochs_ == list(range(max(1, epoch - 5), epoch))[-5:]
    assert trust.seed_runs_ == []
    assert trust.chance_ == pytest.approx(K / (len(table) - 1))
    for row in trust.word_stability():
        expected = expected_epoch_overlap(
            builtin_run, state, table, row["word"], trust.epochs_
        )
        assert row["epoch_overlap"] == pytest.approx(expected)
        assert row["seed_overlap"] is None
        assert row["label"] == (STABLE if expected >= 0.7 else EPOCHS_CHANGE)


def test_a_run_compared_with_its_own_copy_is_stable_across_seeds(seed_run, tmp_path):
    runs = [tmp_path / "out" / f"seed-{n}" for n in (1, 2)]
    for run in runs:
        shutil.copytree(seed_run, run)
    stability = tmp_path / "out" / "stability"
    stability.mkdir()
    listed = {"runs": [str(run) for run in runs]}
    (stability / "stability.json").write_text(json.dumps(listed))
    assert seed_runs(runs[0]) == [runs[1].resolve()]
    state, table = tables_of(runs[0])
    trust = NeighbourStability(k=K).fit(runs[0], "src", table, table.tokens, state)
    rows = trust.word_stability()
    assert all(row["seed_overlap"] == 1.0 for row in rows)
    # Pairs in the checkpoint's lists are pairs in the identical copy too.
    word = table.tokens[0]
    other = table.most_similar(word, 1)[0][0]
    assert trust.pair_stability([(word, other)])[0]["seeds"] == 1.0


def test_another_seed_changes_the_lists(seed_run, tmp_path):
    other = tmp_path / "seed-2"
    train(demo_config(seed_example=True, seed=2), other, seed_pairs())
    (tmp_path / "stability").mkdir()
    (tmp_path / "stability" / "stability.json").write_text(
        json.dumps({"runs": ["gone/seed-1", "gone/seed-2"]})
    )
    first = tmp_path / "seed-1"
    shutil.copytree(seed_run, first)
    # Runs named as written, found beside the report's folder.
    assert seed_runs(first) == [other.resolve()]
    state, table = tables_of(first)
    trust = NeighbourStability(k=K).fit(first, "src", table, table.tokens, state)
    overlaps = [row["seed_overlap"] for row in trust.word_stability()]
    assert np.mean(overlaps) < 0.9  # 18 words, 5 neighbours: seeds differ
    changed = [row for row in trust.word_stability() if row["seed_overlap"] < 0.7]
    assert changed and all(row["label"] == SEEDS_CHANGE for row in changed)


def test_labels_put_seeds_before_epochs():
    trust = NeighbourStability()
    assert trust.label(0.9, 0.9) == STABLE
    assert trust.label(0.5, 0.9) == EPOCHS_CHANGE
    assert trust.label(0.9, 0.5) == SEEDS_CHANGE
    assert trust.label(0.5, 0.5) == SEEDS_CHANGE
    assert trust.label(None, None) == NOT_MEASURED
    assert trust.label(None, 0.8) == STABLE


def test_no_snapshots_no_seeds_is_not_measured(seed_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(seed_run, run, ignore=shutil.ignore_patterns("embeddings"))
    state, table = tables_of(run)
    trust = NeighbourStability(k=K).fit(run, "src", table, table.tokens[:3], state)
    rows = trust.word_stability()
    assert [row["label"] for row in rows] == [NOT_MEASURED] * 3
    assert "not measured" in describe(rows[0], trust.summary())


def test_neighbours_command_gives_each_list_its_stability(builtin_run):
    result = seqembed("neighbours", builtin_run, "天气", "-k", str(K), "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    stability = listing["stability"]
    state, table = tables_of(builtin_run)
    expected = expected_epoch_overlap(
        builtin_run, state, table, "天气", stability["epochs"]
    )
    assert stability["epoch_overlap"] == pytest.approx(expected)
    assert stability["chance"] == pytest.approx(K / (len(table) - 1))
    assert stability["label"] in (STABLE, EPOCHS_CHANGE)
    text = seqembed("neighbours", builtin_run, "天气", "-k", str(K))
    header = text.stdout.splitlines()[0]
    assert header.startswith("天气 (src") and stability["label"] in header
    assert f"kept in epochs {stability['epochs'][0]}-" in header
    assert "random lists" in header


def test_the_checkpoint_of_a_mid_epoch_save_counts_that_epoch(builtin_run, tmp_path):
    """A checkpoint saved inside epoch e compares with the epochs before e."""
    run = tmp_path / "run"
    shutil.copytree(builtin_run, run)
    state = torch.load(run / "best.pt", weights_only=True)
    state["counters"].update(epoch=6, position=3)  # inside epoch 6
    torch.save(state, run / "best.pt")
    _, table = tables_of(run)
    trust = NeighbourStability(k=K).fit(run, "src", table, table.tokens[:2])
    assert trust.epochs_ == [1, 2, 3, 4, 5]
