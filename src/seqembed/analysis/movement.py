"""How far the word embeddings moved during training, and when they settled.

Training saves one snapshot per epoch (``RUN/embeddings/epoch-NNNN.pt``, epoch
0 before the first update; see ``metrics_log``). For one side and a set of
words (special tokens never included) this module reports, per snapshot e:

    step          ||v_e - v_prev|| / ||v_prev||    relative move since the
                                                   previous snapshot
    from_initial  ||v_e - v_first|| / ||v_first||  relative move since the
                                                   first snapshot (epoch 0)
    overlap       |N_e(w) & N_ref(w)| / k          share of a word's k nearest
                                                   neighbours (cosine) that are
                                                   also its neighbours in the
                                                   previous / final snapshot

Movement statistics are the mean and median over words, overlaps the mean.
Words whose reference vector is all zeros have no relative movement and are
left out of those means. "Previous" and "final" are snapshots: with
``train.embedding_snapshot_every`` > 1 a step spans several epochs, and the
final snapshot can be older than the last epoch trained.

Two summary epochs, both ``None`` when the rule holds only at the final
snapshot itself (so always for a run with a single snapshot):

    neighbours_stable_epoch   the first snapshot from which the mean overlap
                              with the final neighbour lists stays
                              >= stable_overlap (0.9) to the end
    movement_settled_epoch    the first snapshot after which every step has a
                              mean <= settled_step (0.01: words move less than
                              1% of their length per snapshot interval)

Snapshots are float16: a relative move below ~5e-4 is at the resolution of
the file, and an unchanged vector reads back exactly unchanged.

Neighbour lists are exact (among all analysed words) but compared for at most
``n_queries`` words, drawn once with ``random_state`` and the same at every
snapshot. All 30,000 words of a large vocabulary would cost ~10 s per snapshot
on one core (the (words x words x dim) product); 1,000 queries take ~0.5 s and
estimate the mean overlap within about +-0.016 (standard error at most
0.5 / sqrt(1000)). ``chance_overlap`` = k / (n_words - 1) is what unrelated
neighbour lists would share: the floor to read overlaps against.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqembed.analysis.similarity import CHUNK_ROWS
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint
from seqembed.vectors.table import EmbeddingTable

SNAPSHOT_DIR = "embeddings"
_SNAPSHOT_NAME = re.compile(r"epoch-(\d+)\.pt")


class EmbeddingMovement:
    """Per-snapshot movement and neighbour stability of one side's words.

    ``fit(run_dir)`` reads ``run_dir/embeddings/epoch-*.pt`` and the run's
    vocabulary (from its checkpoint, or ``vocab``: ``{"tokens", "freqs"}``).

    Learned attributes, one entry per snapshot in epoch order (NaN where a
    value does not exist, e.g. ``step_mean_[0]``):
    ``epochs_``, ``step_mean_``, ``step_median_``, ``from_initial_mean_``,
    ``from_initial_median_``, ``overlap_previous_``, ``overlap_final_``;
    and ``tokens_`` (the analysed words), ``k_`` (neighbours per word, at most
    n_words - 1), ``query_ids_`` (rows of ``tokens_`` whose neighbour lists
    were compared), ``neighbours_stable_epoch_``, ``movement_settled_epoch_``.
    ``to_dict()`` gives all of it as plain JSON data.
    """

    def __init__(
        self,
        side: str = "src",
        k: int = 10,
        min_freq: int = 1,
        only: list[str] | None = None,
        n_queries: int | None = 1000,
        stable_overlap: float = 0.9,
        settled_step: float = 0.01,
        random_state: int = 0,
    ):
        self.side = side
        self.k = k
        self.min_freq = min_freq
        self.only = only
        self.n_queries = n_queries
        self.stable_overlap = stable_overlap
        self.settled_step = settled_step
        self.random_state = random_state

    def fit(self, run_dir: Path, vocab: dict[str, list] | None = None):
        if self.side not in ("src", "tgt"):
            raise ValueError(f"side must be 'src' or 'tgt', not {self.side!r}")
        paths = snapshot_paths(run_dir)
        if vocab is None:
            vocab = load_checkpoint(Path(run_dir))[f"{self.side}_vocab"]
        tokens, n_vocab = list(vocab["tokens"]), len(vocab["tokens"])
        final = read_snapshot(paths[-1][1], self.side, n_vocab)
        chosen = EmbeddingTable(tokens, final, vocab["freqs"]).words(
            self.min_freq, only=self.only
        )
        if len(chosen) == 0:
            raise InputError(
                f"no {self.side} words to analyse (min_freq={self.min_freq})", run_dir
            )
        rows = _vocab_rows(tokens, chosen.tokens)
        self.tokens_ = chosen.tokens
        self.k_ = max(min(self.k, len(rows) - 1), 0)
        self.query_ids_ = self._queries(len(rows))

        # The final lists are every snapshot's reference, so read it first and
        # then stream the rest: four matrices in memory, not one per epoch.
        final = final[rows]
        final_lists = self._neighbours(final)
        columns: dict[str, list[float]] = {name: [] for name in _PER_EPOCH}
        first = previous = previous_lists = None
        for position, (_, path) in enumerate(paths):
            if position == len(paths) - 1:
                vectors, lists = final, final_lists
            else:
                vectors = read_snapshot(path, self.side, n_vocab, final.shape[1])[rows]
                lists = self._neighbours(vectors)
            first = vectors if first is None else first
            step = _relative_moves(vectors, previous)
            from_initial = _relative_moves(vectors, first)
            columns["step_mean"].append(_mean(step))
            columns["step_median"].append(_median(step))
            columns["from_initial_mean"].append(_mean(from_initial))
            columns["from_initial_median"].append(_median(from_initial))
            columns["overlap_previous"].append(_overlap(lists, previous_lists))
            columns["overlap_final"].append(_overlap(lists, final_lists))
            previous, previous_lists = vectors, lists

        self.epochs_ = np.array([epoch for epoch, _ in paths])
        for name, values in columns.items():
            setattr(self, f"{name}_", np.array(values, dtype=np.float64))
        self.neighbours_stable_epoch_ = self._first_epoch_from_which(
            self.overlap_final_ >= self.stable_overlap
        )
        # Settled at snapshot i: every step after it is small (the final
        # snapshot has no later step, so it qualifies vacuously).
        small = np.append(self.step_mean_[1:] <= self.settled_step, True)
        self.movement_settled_epoch_ = self._first_epoch_from_which(small)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (NaN becomes ``None``)::

        side, k, min_freq, n_words, n_queries, chance_overlap,
        stable_overlap, settled_step, initial_epoch, final_epoch,
        neighbours_stable_epoch, movement_settled_epoch,
        epochs: [{epoch, step_mean, step_median, from_initial_mean,
                  from_initial_median, overlap_previous, overlap_final}, ...]

        ``k`` is the neighbours per word actually used (``k_``); the two
        summary epochs and ``chance_overlap`` may be ``None``; in ``epochs``
        the first row's step_* and overlap_previous are ``None``.
        """
        n_words = len(self.tokens_)
        per_epoch = []
        for i, epoch in enumerate(self.epochs_):
            row = {"epoch": int(epoch)}
            for name in _PER_EPOCH:
                value = float(getattr(self, f"{name}_")[i])
                row[name] = None if math.isnan(value) else value
            per_epoch.append(row)
        return {
            "side": self.side,
            "k": int(self.k_),
            "min_freq": self.min_freq,
            "n_words": n_words,
            "n_queries": len(self.query_ids_),
            "chance_overlap": self.k_ / (n_words - 1) if self.k_ else None,
            "stable_overlap": self.stable_overlap,
            "settled_step": self.settled_step,
            "initial_epoch": int(self.epochs_[0]),
            "final_epoch": int(self.epochs_[-1]),
            "neighbours_stable_epoch": self.neighbours_stable_epoch_,
            "movement_settled_epoch": self.movement_settled_epoch_,
            "epochs": per_epoch,
        }

    # -------------------------------------------------------------- helpers

    def _queries(self, n_words: int) -> np.ndarray:
        if self.n_queries is None or self.n_queries >= n_words:
            return np.arange(n_words)
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(n_words, size=self.n_queries, replace=False))

    def _neighbours(self, vectors: np.ndarray) -> np.ndarray | None:
        if self.k_ < 1:
            return None
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms > 0, norms, 1.0)
        return query_neighbours(unit, self.query_ids_, self.k_)

    def _first_epoch_from_which(self, holds: np.ndarray) -> int | None:
        """The epoch of the first snapshot from which ``holds`` is true to the
        end, unless that is only the final snapshot."""
        failing = np.flatnonzero(~holds)
        start = failing[-1] + 1 if len(failing) else 0
        return int(self.epochs_[start]) if start < len(holds) - 1 else None


_PER_EPOCH = (
    "step_mean",
    "step_median",
    "from_initial_mean",
    "from_initial_median",
    "overlap_previous",
    "overlap_final",
)


def snapshot_paths(run_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of a run's embedding snapshots, in epoch order."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = _SNAPSHOT_NAME.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
    if not found:
        raise InputError("no embedding snapshots (epoch-NNNN.pt)", folder)
    return sorted(found)


def query_neighbours(unit: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(len(queries), k) indices of the k nearest other rows of ``unit`` to
    each query row, best first; a block of queries at a time.

    torch.topk rather than ``embeddings.neighbour_ids``' argpartition: on a
    2,048 x 30,000 block of scores it is ~25x faster, which is most of the
    time per snapshot.
    """
    unit_t = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    queries_t = torch.from_numpy(np.asarray(queries, dtype=np.int64))
    result = torch.empty((len(queries_t), k), dtype=torch.int64)
    for start in range(0, len(queries_t), CHUNK_ROWS):
        block = queries_t[start : start + CHUNK_ROWS]
        scores = unit_t[block] @ unit_t.T  # (block, n_words)
        scores[torch.arange(len(block)), block] = -torch.inf  # not itself
        result[start : start + len(block)] = scores.topk(k, dim=1).indices
    return result.numpy()


def read_snapshot(
    path: Path, side: str, n_rows: int, dim: int | None = None
) -> np.ndarray:
    """One side's (n_rows, dim) matrix of a snapshot, as float32."""
    try:
        snapshot = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, not a zip, pickled code, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise InputError(f"cannot read embedding snapshot: {first}", path) from None
    weight = snapshot.get(side) if isinstance(snapshot, dict) else None
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise InputError(f"no {side} embedding matrix in this snapshot", path)
    if len(weight) != n_rows:
        raise InputError(
            f"{side} embeddings have {len(weight)} rows but the run's {side} "
            f"vocabulary has {n_rows} words",
            path,
        )
    if dim is not None and weight.shape[1] != dim:
        raise InputError(
            f"{side} embeddings are {weight.shape[1]} wide here but {dim} wide "
            "in the final snapshot",
            path,
        )
    return weight.float().numpy()


def _vocab_rows(tokens: list[str], chosen: list[str]) -> np.ndarray:
    index = {token: i for i, token in enumerate(tokens)}
    return np.array([index[token] for token in chosen], dtype=np.int64)


def _relative_moves(vectors: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """||v - ref|| / ||ref|| per word, for words whose ref is not zero."""
    if reference is None:
        return np.empty(0)
    norms = np.linalg.norm(reference, axis=1)
    moved = np.linalg.norm(vectors - reference, axis=1)
    keep = norms > 0
    return moved[keep] / norms[keep]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else math.nan


def _overlap(lists: np.ndarray | None, reference: np.ndarray | None) -> float:
    """Mean over words of the share of ``lists`` rows found in ``reference``."""
    if lists is None or reference is None:
        return math.nan
    shared = (lists[:, :, None] == reference[:, None, :]).any(axis=2)  # (q, k)
    return float(shared.mean())
