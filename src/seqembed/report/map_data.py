"""The report's embedding map as plain data: 2-D positions, frequencies and
each word's nearest neighbours, all computed here so the page only draws.

One side of the map (``map_side``)::

    side, n_words        which table; how many words it has in all
    words, freqs         the words on the map, most frequent first
    x, y                 their 2-D positions (projection.Projection)
    neighbours           per word, its k nearest [word, cosine] pairs, searched
                         among all n_words words (not only those on the map)
    label_order          indexes of words, the order to label them in (the
                         page labels as many as fit without overlapping)
    stability            per word, [epoch overlap, seed overlap, label] of its
                         neighbour list (analysis.trust), or null for a map
                         made without a run to compare with
    stability_summary    what was compared (NeighbourStability.summary), or null
    method               how the positions were made, for the caption
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seqembed.analysis.trust import NeighbourStability
from seqembed.analysis.words import is_content_word
from seqembed.report.projection import Projection, describe
from seqembed.vectors.table import EmbeddingTable

N_NEIGHBOURS = 10
BLOCK_ROWS = 1024  # 1024 x 30,000 float32 cosines: 123 MB at a time


def map_side(
    side: str,
    table: EmbeddingTable,
    max_words: int,
    method: str = "tsne",
    random_state: int = 0,
    checkpoint: Path | None = None,
    state: dict | None = None,
    which: str = "best",
) -> dict:
    """The ``max_words`` most frequent words of ``table`` placed in 2-D.

    A t-SNE of 30,000 words takes most of a minute and its page would be slow
    to hover, so large vocabularies are cut to their frequent words; the
    neighbour lists still search the whole table. ``checkpoint``: the file
    ``table`` comes from, whose run's earlier epochs and other seeds the
    neighbour lists are compared with (``analysis.trust``); None: no
    comparison; ``state`` its loaded contents, if at hand; ``which``: the
    checkpoint of the other seeds' runs compared, "best" or "last".
    """
    order = np.argsort(-table.freqs, kind="stable")[:max_words]
    shown = table.select([table.tokens[i] for i in order])
    if len(shown) >= 2:
        projection = Projection(method, random_state=random_state)
        points = projection.fit_transform(shown.vectors)
        caption = describe(projection)
    else:  # nothing to project: one word sits at the origin
        points, caption = np.zeros((len(shown), 2)), "one word, no projection"
    trust = None
    if checkpoint is not None:
        trust = NeighbourStability(k=N_NEIGHBOURS, checkpoint=which).fit(
            checkpoint, side, table, shown.tokens, state
        )
    return {
        "side": side,
        "n_words": len(table),
        "words": shown.tokens,
        "freqs": shown.freqs.tolist(),
        "x": np.round(points[:, 0], 4).tolist(),
        "y": np.round(points[:, 1], 4).tolist(),
        "neighbours": nearest_words(table, shown.tokens, N_NEIGHBOURS),
        "label_order": label_order(shown.tokens),
        "stability": None
        if trust is None
        else [
            [_rounded(w["epoch_overlap"]), _rounded(w["seed_overlap"]), w["label"]]
            for w in trust.word_stability()
        ],
        "stability_summary": None if trust is None else trust.summary(),
        "method": f"{caption} (L2-normalised vectors)",
    }


def label_order(words: list[str]) -> list[int]:
    """Which words to label first (words most frequent first): the content
    words, then the function words (的, 了, the) that are frequent everywhere."""
    content = [i for i, w in enumerate(words) if is_content_word(w)]
    return content + [i for i, w in enumerate(words) if not is_content_word(w)]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def nearest_words(
    table: EmbeddingTable, words: list[str], k: int
) -> list[list[list[str | float]]]:
    """For each of ``words``, its k nearest other words of ``table`` by cosine,
    best first, as [word, cosine rounded to 3 places]."""
    k = min(k, len(table) - 1)
    if k < 1:
        return [[] for _ in words]
    unit = torch.from_numpy(np.ascontiguousarray(table.unit_vectors()))
    rows = torch.tensor([table.index[w] for w in words], dtype=torch.long)
    result = []
    for start in range(0, len(rows), BLOCK_ROWS):
        block = rows[start : start + BLOCK_ROWS]
        scores = unit[block] @ unit.T  # (block, n_words)
        scores[torch.arange(len(block)), block] = -torch.inf  # not itself
        best = scores.topk(k, dim=1)
        for ids, values in zip(best.indices.tolist(), best.values.tolist()):
            result.append([[table.tokens[i], round(v, 3)] for i, v in zip(ids, values)])
    return result
