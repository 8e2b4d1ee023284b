"""Which nearest neighbours can be trusted: do they survive a few more epochs
of training, or another random seed?

Embedding neighbours are unstable across random seeds and small changes of
the corpus (Antoniak & Mimno, TACL 2018; Wendlandt et al., NAACL 2018), most
of all on small corpora. A neighbour list is worth reading only as far as it
is the same list in a run trained a little longer or shorter, or with
another seed. Both comparisons are free here:

    epochs   training saves every epoch's embeddings (RUN/embeddings/); the
             checkpoint's list is compared with the lists of the
             ``n_epochs`` epochs before the checkpoint's own (never epoch 0,
             the untrained vectors)
    seeds    ``train --seeds`` and ``analyze --stability`` write
             stability/stability.json beside the runs; the other runs listed
             there are compared too

For a word w with k nearest neighbours N(w) in the checkpoint, and N_e(w) in
epoch e (or N_r(w) in run r), both among the same words::

    overlap = mean over e of |N(w) & N_e(w)| / k        (1: the same list)
    chance  = k / (n_words - 1)     what two unrelated lists would share

and a plain label: "stable" when every overlap measured is at least
``stable_overlap`` (0.7: seven of ten neighbours kept), else "changes between
seeds" or "changes between epochs" (seeds first: the stronger test); "not
measured" for a run with no earlier snapshots and no other seeds. For a pair
(a, b) of the top pairs the figure is the share of epochs (runs) in which b
is still among a's k nearest or a among b's. docs/reading-neighbours.md says
how to read them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from seqembed.analysis.movement import query_neighbours, read_snapshot, snapshot_paths
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint, load_tables, resolve_checkpoint
from seqembed.vectors.table import EmbeddingTable

log = logging.getLogger(__name__)

K = 10
N_EPOCHS = 5
STABLE_OVERLAP = 0.7
STABILITY_FILE = Path("stability") / "stability.json"
STABLE = "stable"
EPOCHS_CHANGE = "changes between epochs"
SEEDS_CHANGE = "changes between seeds"
NOT_MEASURED = "not measured"


class NeighbourStability:
    """The k nearest neighbours of some words of one side, in the checkpoint,
    in the epochs before it and in runs with other seeds (estimator style).

    ``fit(run, side, table, words)``: ``run`` a run directory or checkpoint
    file, ``table`` the EmbeddingTable the neighbour lists are searched in
    (``load_tables(state)[side].words(...)``), ``words`` the words whose
    lists to compare. Learned: ``words_``, ``lists_`` ((n, k) rows of
    ``table``), ``epochs_`` and ``epoch_lists_`` (one (n, k) array per
    epoch), ``seed_runs_`` and ``seed_lists_`` (-1 rows for a word the other
    run lacks), ``k_``, ``chance_``.
    """

    def __init__(
        self,
        k: int = K,
        n_epochs: int = N_EPOCHS,
        stable_overlap: float = STABLE_OVERLAP,
        checkpoint: str = "best",
    ):
        self.k = k
        self.n_epochs = n_epochs
        self.stable_overlap = stable_overlap
        self.checkpoint = checkpoint

    def fit(
        self,
        run: Path,
        side: str,
        table: EmbeddingTable,
        words: list[str],
        state: dict | None = None,
    ) -> NeighbourStability:
        path = resolve_checkpoint(Path(run), self.checkpoint)
        state = state if state is not None else load_checkpoint(path)
        missing = [w for w in words if w not in table]
        if missing:
            raise ValueError(f"not in the table: {' '.join(missing[:5])}")
        self.words_ = list(words)
        self.table_index_ = table.index
        self.k_ = max(min(self.k, len(table) - 1), 0)
        self.chance_ = self.k_ / (len(table) - 1) if self.k_ else None
        queries = np.array([table.index[w] for w in words], dtype=np.int64)
        self.lists_ = _lists(table.unit_vectors(), queries, self.k_)
        self.epochs_, self.epoch_lists_ = self._epoch_lists(
            path.parent, side, table, queries, state
        )
        self.seed_runs_, self.seed_lists_ = self._seed_lists(path, side, table)
        return self

    # ------------------------------------------------------------ results

    def word_stability(self) -> list[dict]:
        """Per word: {word, k, epoch_overlap, seed_overlap, chance, label}."""
        by_epoch = _overlaps(self.lists_, self.epoch_lists_)
        by_seed = _overlaps(self.lists_, self.seed_lists_)
        return [
            {
                "word": word,
                "k": self.k_,
                "epoch_overlap": by_epoch[i],
                "seed_overlap": by_seed[i],
                "chance": self.chance_,
                "label": self.label(by_epoch[i], by_seed[i]),
            }
            for i, word in enumerate(self.words_)
        ]

    def pair_stability(self, pairs: list[tuple[str, str]]) -> list[dict]:
        """Per pair (a, b) of ``words_``: the share of epochs (runs) in which b
        is among a's k nearest or a among b's; {epochs, seeds, chance, label}."""
        row = {w: i for i, w in enumerate(self.words_)}
        ids = self.table_index_
        chance = None
        if self.chance_ is not None:
            chance = 1 - (1 - self.chance_) ** 2  # b in N(a) or a in N(b)
        out = []
        for a, b in pairs:
            found = [
                _kept(lists, row[a], row[b], ids[a], ids[b])
                for lists in (self.epoch_lists_, self.seed_lists_)
            ]
            out.append(
                {
                    "epochs": found[0],
                    "seeds": found[1],
                    "chance": chance,
                    "label": self.label(*found),
                }
            )
        return out

    def summary(self) -> dict:
        """What was compared: {k, chance, epochs, seed_runs, stable_overlap}."""
        return {
            "k": self.k_,
            "chance": self.chance_,
            "epochs": [int(e) for e in self.epochs_],
            "seed_runs": [str(r) for r in self.seed_runs_],
            "stable_overlap": self.stable_overlap,
        }

    def label(self, epoch_overlap: float | None, seed_overlap: float | None) -> str:
        if seed_overlap is not None and seed_overlap < self.stable_overlap:
            return SEEDS_CHANGE
        if epoch_overlap is not None and epoch_overlap < self.stable_overlap:
            return EPOCHS_CHANGE
        if epoch_overlap is None and seed_overlap is None:
            return NOT_MEASURED
        return STABLE

    # ------------------------------------------------------------ helpers

    def _epoch_lists(self, run_dir: Path, side, table, queries, state):
        """The neighbour lists of the ``n_epochs`` snapshots before the
        checkpoint's epoch, searched among the same words."""
        try:
            paths = snapshot_paths(run_dir)
        except InputError:
            return [], []
        epoch = _checkpoint_epoch(state)
        chosen = [(e, p) for e, p in paths if 1 <= e < epoch][-self.n_epochs :]
        vocab = state[f"{side}_vocab"]["tokens"]
        index = {token: i for i, token in enumerate(vocab)}
        rows = np.array([index[t] for t in table.tokens], dtype=np.int64)
        lists = []
        for _, snapshot in chosen:
            vectors = read_snapshot(snapshot, side, len(vocab), table.dim)[rows]
            lists.append(_lists(_unit(vectors), queries, self.k_))
        return [e for e, _ in chosen], lists

    def _seed_lists(self, path: Path, side: str, table: EmbeddingTable):
        """The lists of the same words in the runs with other seeds, in this
        table's row ids (-1 rows where the other run lacks the word)."""
        runs = seed_runs(path.parent)
        lists = []
        for other in runs:
            path = resolve_checkpoint(other, self.checkpoint)
            tables = load_tables(load_checkpoint(path))
            theirs = tables[side].select([t for t in table.tokens if t in tables[side]])
            back = np.array([table.index[t] for t in theirs.tokens], dtype=np.int64)
            result = np.full((len(self.words_), self.k_), -1, dtype=np.int64)
            present = [i for i, w in enumerate(self.words_) if w in theirs]
            if present and self.k_:
                queries = np.array([theirs.index[self.words_[i]] for i in present])
                k = min(self.k_, len(theirs) - 1)
                found = _lists(theirs.unit_vectors(), queries, k)
                result[present, : found.shape[1]] = back[found]
            lists.append(result)
        return runs, lists


def describe(stability: dict, summary: dict) -> str:
    """One word's stability in words: ``stable: 8 of 10 kept in epochs 7-11,
    7 of 10 across 2 other seeds; random lists: 0.3 of 10``."""
    k = summary["k"]
    if stability["label"] == NOT_MEASURED:
        return "stability not measured: no earlier epochs saved, no other seeds"
    parts = []
    if stability["epoch_overlap"] is not None:
        epochs = summary["epochs"]
        span = (
            f"epochs {epochs[0]}-{epochs[-1]}"
            if len(epochs) > 1
            else (f"epoch {epochs[0]}")
        )
        parts.append(f"{round(stability['epoch_overlap'] * k)} of {k} kept in {span}")
    if stability["seed_overlap"] is not None:
        n = len(summary["seed_runs"])
        seeds = "other seed" if n == 1 else "other seeds"
        kept = round(stability["seed_overlap"] * k)
        parts.append(f"{kept} of {k} across {n} {seeds}")
    chance = summary["chance"]
    tail = f"; random lists: {chance * k:.1f} of {k}" if chance is not None else ""
    return f"{stability['label']}: {', '.join(parts)}{tail}"


def seed_runs(run_dir: Path) -> list[Path]:
    """The other runs of a stability analysis that lists ``run_dir``
    (RUN/stability/stability.json or RUN/../stability/stability.json), those
    that still exist."""
    run_dir = Path(run_dir).resolve()
    for folder in (run_dir, run_dir.parent):
        path = folder / STABILITY_FILE
        if not path.is_file():
            continue
        try:
            listed = json.loads(path.read_text(encoding="utf-8"))["runs"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("%s: not a stability report, ignored", path)
            continue
        runs = [_locate(Path(r), path.parent.parent) for r in listed]
        if run_dir in runs:
            return [r for r in runs if r is not None and r != run_dir]
    return []


def _locate(listed: Path, base: Path) -> Path | None:
    """A run as the stability report names it: as written (relative to the
    working directory), else beside the report's folder."""
    for candidate in (listed, base / listed.name):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _checkpoint_epoch(state: dict) -> int:
    """The epoch the checkpoint was saved in (counters hold the next one)."""
    counters = state.get("counters", {})
    done = int(counters.get("epoch", 1)) - 1
    return done + (1 if counters.get("position", 0) else 0)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _lists(unit: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    if k < 1 or len(queries) == 0:
        return np.zeros((len(queries), 0), dtype=np.int64)
    return query_neighbours(unit, queries, k)


def _overlaps(lists: np.ndarray, others: list[np.ndarray]) -> list[float | None]:
    """Per row: the mean over ``others`` of the share of the row's ids found
    in the other's row (rows of -1, a missing word, are left out)."""
    if not others or lists.shape[1] == 0:
        return [None] * len(lists)
    shares = []
    for other in others:
        hit = (lists[:, :, None] == other[:, None, :]).any(axis=2).mean(axis=1)
        shares.append(np.where(other[:, 0] >= 0, hit, np.nan))
    means = np.nanmean(np.array(shares), axis=0) if len(lists) else []
    return [None if np.isnan(m) else float(m) for m in means]


def _kept(lists: list[np.ndarray], row_a, row_b, id_a, id_b) -> float | None:
    """Share of ``lists`` in which b is among a's neighbours or a among b's."""
    if not lists:
        return None
    kept = [
        bool(id_b in other[row_a] or id_a in other[row_b])
        for other in lists
        if other[row_a, 0] >= 0 and other[row_b, 0] >= 0
    ]
    return float(np.mean(kept)) if kept else None
