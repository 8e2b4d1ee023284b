"""Embedding queries over a served model's tables, each beside its chance level.

Plain numpy over ``EmbeddingTable`` rows (no model runs here), so these run
on the server's analysis thread, not on a model's worker::

    neighbours   a word's k nearest words: cosine now, cosine before training,
                 the cosine random vectors of the table's shape reach at that
                 rank (analysis.chance.expected_top_scores), and stability:
                 the share of other spaces (the run's sibling seeds, else its
                 embedding snapshots) in which the neighbour is also there
    similarity   cosine of word pairs, before and after training, and the
                 two-sided p of that cosine between random vectors
    analogy      gensim's most_similar(positive, negative): the mean of the
                 unit vectors (negatives subtracted), its nearest words

``Spaces`` holds each side's unit rows and the stability spaces, read once.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqembed.analysis.chance import cosine_two_sided, expected_top_scores
from seqembed.analysis.movement import read_snapshot, snapshot_paths
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint, load_tables, resolve_checkpoint
from seqembed.serve.models import ServedModel
from seqembed.vectors.table import EmbeddingTable

log = logging.getLogger(__name__)

MAX_STABILITY_SPACES = 10  # snapshots (or seeds) the stability figure counts
_SEED_DIR = re.compile(r"seed-\d+")


class UnknownWord(InputError):
    """A word a table does not have: the server answers 404 naming it."""

    def __init__(self, word: str, side: str, model: str, field: str):
        super().__init__(
            f"{word!r} is not in model {model}'s {side} vocabulary"
            " (words are matched after segmentation, e.g. 学习 not 学)"
        )
        self.field = field


@dataclass
class Space:
    """Unit rows of one table, for fast cosine look-ups."""

    tokens: list[str]
    index: dict[str, int]
    unit: np.ndarray  # (n_words, dim) float32

    @classmethod
    def of(cls, table: EmbeddingTable) -> Space:
        return cls(table.tokens, table.index, table.unit_vectors())

    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.unit @ vector  # (n_words,)

    def nearest(self, row: int, k: int) -> list[int]:
        """The k rows nearest ``row`` (itself left out), best first."""
        scores = self.scores(self.unit[row])
        scores[row] = -np.inf
        return top_rows(scores, k)


def top_rows(scores: np.ndarray, k: int) -> list[int]:
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k]
    return sorted(best.tolist(), key=lambda i: (-scores[i], i))


@functools.lru_cache(maxsize=256)
def rank_chance(k: int, n_words: int, dim: int) -> tuple[float, ...]:
    """The median cosine of the 1st..k-th nearest of ``n_words`` - 1 random
    rows to a query, in ``dim`` dimensions."""
    return tuple(expected_top_scores(k, max(n_words - 1, 1), dim))


class Spaces:
    """One model's query spaces: trained and initial rows, and (read on first
    use) the spaces its stability figures are counted over."""

    def __init__(self, model: ServedModel):
        self.model = model
        self.trained = {s: Space.of(t) for s, t in model.tables.items()}
        self.initial = {s: Space.of(t) for s, t in model.initial.items()}
        self._stability: dict[str, tuple[str, list[Space]]] = {}

    def row(self, side: str, word: str, field: str) -> int:
        space = self.trained[side]
        if word not in space.index:
            raise UnknownWord(word, side, self.model.id, field)
        return space.index[word]

    def stability(self, side: str) -> tuple[str | None, list[Space]]:
        """("seeds", spaces) for a run trained with ``--seeds`` (its sibling
        seed-N runs), else ("snapshots", spaces) over the embedding
        snapshots after epoch 0 (at most ``MAX_STABILITY_SPACES``, evenly
        spread, the last one included), else (None, [])."""
        if side not in self._stability:
            tokens = self.trained[side].tokens
            seeds = _sibling_tables(self.model.run_dir, side, tokens)
            if seeds:
                self._stability[side] = ("seeds", seeds)
            else:
                snapshots = _snapshot_tables(self.model, side, tokens)
                self._stability[side] = ("snapshots" if snapshots else None, snapshots)
        return self._stability[side]


def neighbours(spaces: Spaces, side: str, word: str, k: int) -> dict[str, Any]:
    trained = spaces.trained[side]
    row = spaces.row(side, word, "word")
    best = trained.nearest(row, k)
    scores = trained.scores(trained.unit[row])
    initial = spaces.initial.get(side)
    before = initial.scores(initial.unit[row]) if initial else None
    over, others = spaces.stability(side)
    lists = [set(_nearest_words(space, word, len(best))) for space in others]
    chance = rank_chance(len(best), len(trained.tokens), trained.unit.shape[1])
    items = []
    for rank, i in enumerate(best):
        neighbour = trained.tokens[i]
        share = (
            sum(neighbour in found for found in lists) / len(lists) if lists else None
        )
        items.append(
            {
                "word": neighbour,
                "cosine": _r(scores[i]),
                "initial_cosine": _r(before[i]) if before is not None else None,
                "chance": _r(chance[rank]),
                "stability": share,
            }
        )
    return {
        "model": spaces.model.id,
        "word": word,
        "side": side,
        "k": len(best),
        "n_words": len(trained.tokens),
        "dim": int(trained.unit.shape[1]),
        "stability": {"over": over, "n": len(others)},
        "neighbours": items,
    }


def _nearest_words(space: Space, word: str, k: int) -> list[str]:
    if word not in space.index:
        return []
    return [space.tokens[i] for i in space.nearest(space.index[word], k)]


def similarity(spaces: Spaces, side: str, pairs: list[list[str]]) -> dict[str, Any]:
    trained = spaces.trained[side]
    initial = spaces.initial.get(side)
    dim = int(trained.unit.shape[1])
    result = []
    for n, (a, b) in enumerate(pairs):
        i = spaces.row(side, a, f"pairs[{n}][0]")
        j = spaces.row(side, b, f"pairs[{n}][1]")
        value = float(trained.unit[i] @ trained.unit[j])
        result.append(
            {
                "a": a,
                "b": b,
                "cosine": _r(value),
                "initial_cosine": (
                    _r(initial.unit[i] @ initial.unit[j]) if initial else None
                ),
                # How often two random rows are at least this (anti-)similar.
                "p_random": float(cosine_two_sided(value, dim)),
            }
        )
    return {
        "model": spaces.model.id,
        "side": side,
        "dim": dim,
        "chance": {"mean": 0.0, "sd": _r(1 / np.sqrt(dim))},
        "similarities": result,
    }


def analogy(
    spaces: Spaces, side: str, positive: list[str], negative: list[str], k: int
) -> dict[str, Any]:
    """gensim's ``most_similar(positive, negative)``: the normalised mean of
    the words' unit vectors (+1 for positive, -1 for negative); the words
    asked about are never answers."""
    trained = spaces.trained[side]
    rows = [spaces.row(side, w, f"positive[{n}]") for n, w in enumerate(positive)]
    rows_neg = [spaces.row(side, w, f"negative[{n}]") for n, w in enumerate(negative)]
    query = trained.unit[rows].sum(axis=0) - trained.unit[rows_neg].sum(axis=0)
    norm = float(np.linalg.norm(query))
    if norm == 0:
        raise InputError("the positive and negative words cancel out: no direction")
    scores = trained.scores((query / norm).astype(np.float32))
    scores[rows + rows_neg] = -np.inf
    best = top_rows(scores, k)
    n_candidates = len(trained.tokens) - len(set(rows + rows_neg))
    chance = rank_chance(len(best), n_candidates + 1, trained.unit.shape[1])
    return {
        "model": spaces.model.id,
        "side": side,
        "positive": positive,
        "negative": negative,
        "results": [
            {"word": trained.tokens[i], "cosine": _r(scores[i]), "chance": _r(c)}
            for i, c in zip(best, chance)
        ],
    }


# ---------------------------------------------------------------- stability


def _sibling_tables(run_dir: Path, side: str, tokens: list[str]) -> list[Space]:
    """The other seed-N runs beside a seed-N run (``train --seeds``)."""
    if not _SEED_DIR.fullmatch(run_dir.name):
        return []
    spaces = []
    for other in sorted(run_dir.parent.iterdir()):
        if other == run_dir or not _SEED_DIR.fullmatch(other.name):
            continue
        try:
            table = load_tables(load_checkpoint(resolve_checkpoint(other)))[side]
        except (InputError, KeyError) as error:
            log.warning("stability: %s left out (%s)", other, error)
            continue
        table = table.words(min_freq=0)
        spaces.append(Space.of(table.select([t for t in tokens if t in table])))
        if len(spaces) == MAX_STABILITY_SPACES:
            break
    return spaces


def _snapshot_tables(model: ServedModel, side: str, tokens: list[str]) -> list[Space]:
    try:
        paths = [path for epoch, path in snapshot_paths(model.run_dir) if epoch > 0]
    except InputError:
        return []
    if len(paths) > MAX_STABILITY_SPACES:
        picks = np.linspace(0, len(paths) - 1, MAX_STABILITY_SPACES).round()
        paths = [paths[int(i)] for i in picks]
    vocab = model.translator.src_vocab if side == "src" else model.translator.tgt_vocab
    rows = [vocab.index[t] for t in tokens]
    spaces = []
    for path in paths:
        try:
            vectors = read_snapshot(path, side, len(vocab))[rows]
        except InputError as error:
            log.warning("stability: %s", error)
            continue
        spaces.append(Space.of(EmbeddingTable(tokens, vectors, np.zeros(len(rows)))))
    return spaces


def _r(value: float) -> float:
    return round(float(value), 5)
