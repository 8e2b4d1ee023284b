"""The explorer's two pictures: a side's embedding map, and two spaces compared.

``embedding_map`` is the report's map (``report.map_data.map_side``: 2-D
positions of the most frequent words and each word's nearest neighbours)
with the chance cosine at each neighbour rank added.

``compare`` puts the same words of two spaces side by side::

    trained vs initial    one run's vectors after and before training: the
                          rows are the same words, nothing to align
    run A vs run B        two runs' shared words, B rotated onto A by
                          orthogonal Procrustes (Schoenemann 1966) fitted on
                          all shared words: W = U V^T, U S V^T = svd(B^T A)

and answers which words moved most (lowest cosine between a word's two
vectors, after the rotation) and whose neighbour lists changed (overlap of
the k nearest shared words in each space; unrelated lists overlap k / (n-1)).
Each space is projected on its own (t-SNE or PCA), so read positions within
a picture, and the moves and overlaps across them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqembed.errors import InputError
from seqembed.report.map_data import N_NEIGHBOURS, map_side
from seqembed.report.projection import Projection, describe, unit_rows
from seqembed.serve.explore import rank_chance
from seqembed.serve.models import ServedModel
from seqembed.vectors.table import EmbeddingTable

N_LISTED = 25  # words in the "moved most" and "changed most" lists


def embedding_map(
    model: ServedModel, side: str, max_words: int, method: str
) -> dict[str, Any]:
    table = model.tables[side]
    data = map_side(side, table, max_words, method)
    k = max((len(n) for n in data["neighbours"]), default=0)
    data["chance"] = list(rank_chance(k, len(table), table.dim)) if k else []
    data["model"] = model.id
    return data


def _two_spaces(a: ServedModel, b: ServedModel | None, side: str):
    """The two tables on the same rows (the second rotated onto the first
    where they are two runs), their labels and how they were aligned."""
    if b is None:
        first, second = a.tables[side], a.initial[side]
        labels = [f"{a.id} (trained)", f"{a.id} (initial)"]
        return first, second, labels, "none: the same rows before and after training"
    first, second = _shared(a.tables[side], b.tables[side])
    second = EmbeddingTable(
        second.tokens, procrustes(first.vectors, second.vectors), second.freqs
    )
    alignment = f"orthogonal Procrustes over {len(first):,} shared words"
    return first, second, [a.id, b.id], alignment


def compare(
    a: ServedModel,
    b: ServedModel | None,
    side: str,
    max_words: int,
    method: str,
    k: int = N_NEIGHBOURS,
) -> dict[str, Any]:
    """``b`` None: ``a`` trained against ``a`` before training."""
    first, second, labels, alignment = _two_spaces(a, b, side)
    unit_a, unit_b = unit_rows(first.vectors), unit_rows(second.vectors)
    moved = np.einsum("ij,ij->i", unit_a, unit_b)  # (n_words,) cosine per word
    order = np.argsort(-first.freqs, kind="stable")[:max_words]
    shown = [first.tokens[i] for i in order]
    lists_a, lists_b = (
        _neighbour_lists(unit_a, order, k),
        _neighbour_lists(unit_b, order, k),
    )
    overlap = np.array(
        [len(set(x) & set(y)) / max(len(x), 1) for x, y in zip(lists_a, lists_b)]
    )
    pictures = [_project(unit[order], method) for unit in (unit_a, unit_b)]
    n_words = len(first)
    by_move = np.argsort(moved[order], kind="stable")[:N_LISTED]
    by_change = np.argsort(overlap, kind="stable")[:N_LISTED]
    words_of = first.tokens
    return {
        "side": side,
        "labels": labels,
        "alignment": alignment,
        "n_words": n_words,
        "dim": first.dim,
        "k": k,
        "words": shown,
        "freqs": first.freqs[order].tolist(),
        "spaces": [
            {
                "label": label,
                "x": picture[0],
                "y": picture[1],
                "method": picture[2],
                "neighbours": [[words_of[i] for i in row] for row in lists],
            }
            for label, picture, lists in zip(labels, pictures, (lists_a, lists_b))
        ],
        "cosine": np.round(moved[order], 4).tolist(),
        # Two unrelated directions in dim dimensions: cosine 0 +- 1/sqrt(dim).
        "cosine_chance": {"mean": 0.0, "sd": round(1 / np.sqrt(first.dim), 4)},
        "overlap": np.round(overlap, 4).tolist(),
        "mean_overlap": float(overlap.mean()) if len(overlap) else None,
        "chance_overlap": k / (n_words - 1) if n_words > 1 else None,
        "moved_most": [
            {"word": shown[i], "cosine": round(float(moved[order][i]), 4)}
            for i in by_move
        ],
        "changed_most": _changed(shown, words_of, overlap, lists_a, lists_b, by_change),
    }


def _changed(shown, words_of, overlap, lists_a, lists_b, rows) -> list[dict]:
    """The words whose neighbour lists changed most, with both lists."""
    return [
        {
            "word": shown[i],
            "overlap": round(float(overlap[i]), 4),
            "before": [words_of[j] for j in lists_a[i]],
            "after": [words_of[j] for j in lists_b[i]],
        }
        for i in rows
    ]


def procrustes(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``source`` rotated onto ``target`` (rows: the same words): the
    orthogonal W minimising ||source W - target||_F, fitted on unit rows,
    applied to the vectors as they are."""
    x, y = unit_rows(source), unit_rows(target)
    u, _, vt = np.linalg.svd(x.T @ y, full_matrices=False)
    return (source.astype(np.float64) @ (u @ vt)).astype(np.float32)


def _shared(a: EmbeddingTable, b: EmbeddingTable):
    if a.dim != b.dim:
        raise InputError(
            f"the two runs' tables are {a.dim} and {b.dim} wide: an orthogonal "
            "rotation needs the same width"
        )
    words = [t for t in a.tokens if t in b.index]
    if len(words) < 3:
        raise InputError(f"the two runs share {len(words)} words: too few to align")
    return a.select(words), b.select(words)


def _neighbour_lists(unit: np.ndarray, rows: np.ndarray, k: int) -> list[list[int]]:
    """Each row's k nearest other rows among all rows, best first."""
    scores = unit[rows] @ unit.T  # (len(rows), n_words)
    scores[np.arange(len(rows)), rows] = -np.inf
    k = min(k, unit.shape[0] - 1)
    if k < 1:
        return [[] for _ in rows]
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    ranked = np.take_along_axis(scores, best, axis=1)
    order = np.argsort(-ranked, axis=1, kind="stable")
    return np.take_along_axis(best, order, axis=1).tolist()


def _project(unit: np.ndarray, method: str) -> tuple[list, list, str]:
    if len(unit) < 2:
        return [0.0] * len(unit), [0.0] * len(unit), "one word, no projection"
    projection = Projection(method, random_state=0)
    points = projection.fit_transform(unit)
    return (
        np.round(points[:, 0], 4).tolist(),
        np.round(points[:, 1], 4).tolist(),
        describe(projection),
    )
