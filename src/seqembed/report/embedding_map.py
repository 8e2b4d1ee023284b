"""The embedding map: a run's word vectors as labelled points in 2-D.

::

    tables --embedding_map--> EmbeddingMap --map_drawing.map_figure--> Figure
                              (plain data)  --map_drawing.map_html---> HTML
    Figure --figures.save_figure--> PNG / SVG / PDF

``EmbeddingMap`` holds everything a drawing needs (2-D positions, words,
sides, frequencies, which points are labelled, colour categories, dictionary
links), so the matplotlib and plotly renderings show the same picture.

The drawings are in ``map_drawing``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqembed.analysis.words import is_content_word
from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError
from seqembed.report.projection import Projection, describe, unit_rows
from seqembed.vectors.table import EmbeddingTable

SIDES = ("src", "tgt", "both")
COLORS = ("group", "frequency", "chance")
DEFAULT_LABELS = 40  # label every word of a map this small, else the N most frequent
OTHER = "other"  # group colouring: a word in no group
SPECIAL = "special token"
SIDE_NAMES = {"src": "source (Chinese)", "tgt": "target (English)"}


@dataclass
class EmbeddingMap:
    """One embedding picture as plain data; index i is one point."""

    words: list[str]
    sides: list[str]  # "src" or "tgt" per point
    xy: np.ndarray  # (n, 2)
    freqs: np.ndarray  # (n,) training frequency
    special: np.ndarray  # (n,) bool: <SOS>, <EOS>, <UNK>
    labelled: np.ndarray  # (n,) bool: draw the word next to its point
    color: str  # "group", "frequency" or "chance"
    categories: list[str] | None  # per point, for "group" and "chance"
    links: list[tuple[int, int]]  # (src point, tgt point): dictionary pairs
    title: str
    method: str  # how the positions were made, for the caption
    # The order to draw labels in (0 first): a drawing that cannot fit them
    # all without overlaps keeps the first. None: frequency order.
    label_rank: np.ndarray | None = None
    label_note: str = ""  # which words are labelled and why, for the caption


def embedding_map(
    tables: dict[str, EmbeddingTable],
    side: str = "src",
    projection: Projection | None = None,
    color: str = "frequency",
    groups: dict[str, list[str]] | None = None,
    analysis: dict | None = None,
    n_labels: int = DEFAULT_LABELS,
    min_freq: int = 1,
    include_specials: bool = True,
    lexicon: list[tuple[str, str]] | None = None,
) -> EmbeddingMap:
    """Place one side's words (or both, the target mapped into the source
    space by the cross-lingual map) in 2-D and decide labels and colours.

    ``tables``: ``embeddings.load_tables`` of a checkpoint. ``groups``: topic
    groups for ``color="group"``; ``analysis``: an ``analysis.json`` result
    for ``color="chance"``. ``lexicon`` (for ``side="both"``) defaults to
    CC-CEDICT over the two vocabularies.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, not {color!r}")
    projection = projection or Projection()
    if side == "both":
        chosen, vectors, links = _both_sides(
            tables, min_freq, include_specials, lexicon, projection.random_state
        )
    else:
        chosen = {side: _words(tables[side], min_freq, include_specials)}
        vectors, links = chosen[side].vectors, []
    words = [w for table in chosen.values() for w in table.tokens]
    sides = [s for s, table in chosen.items() for _ in table.tokens]
    if len(words) < 2:
        raise InputError(f"fewer than two words to plot (min_freq={min_freq})")
    xy = projection.fit_transform(vectors)
    freqs = np.concatenate([table.freqs for table in chosen.values()])
    special = np.array([w in SPECIALS for w in words])
    categories = _categories(color, words, sides, groups, analysis, links)
    names = " and ".join(SIDE_NAMES[s].split(" (")[0] for s in chosen)
    first, last = _label_preferences(words, special, categories, color)
    labelled = label_mask(freqs, sides, special, n_labels, first, last)
    return EmbeddingMap(
        words=words,
        sides=sides,
        xy=xy,
        freqs=freqs,
        special=special,
        labelled=labelled,
        color=color,
        categories=categories,
        links=links,
        title=f"{names} word embeddings, {len(words)} tokens",
        method=describe(projection) + " of L2-normalised vectors",
        label_rank=label_ranks(freqs, special, first, last),
        label_note=_label_note(labelled, special, sides, first, last),
    )


def _categories(color, words, sides, groups, analysis, links) -> list[str] | None:
    if color == "group":
        return group_categories(words, groups or {}, links)
    if color == "chance":
        return chance_categories(words, sides, analysis)
    return None


def _label_preferences(words, special, categories, color):
    """Colouring by group: the group members' labels first, the function
    words' (的, 了, the) last, so the coloured words are the named ones.
    Otherwise: none (labels by frequency alone)."""
    if color != "group":
        return None, None
    first = np.array([c not in (OTHER, SPECIAL) for c in categories])
    last = np.array([not is_content_word(w) for w in words]) & ~first & ~special
    return first, last


def _words(table: EmbeddingTable, min_freq: int, specials: bool) -> EmbeddingTable:
    """The words to draw; never <PAD>, whose vector is zero by construction."""
    table = table.words(min_freq, include_specials=specials)
    return table.select([w for w in table.tokens if w != SPECIALS[0]])


def _both_sides(tables, min_freq, include_specials, lexicon, random_state):
    """Source rows and target rows in one space: each normalised as the
    cross-lingual map expects (unit, centred, unit), and the target rows sent
    back through the map's pseudo-inverse (its transpose when orthogonal)."""
    from seqembed.analysis.alignment import CrossLingualMap
    from seqembed.analysis.lexicon import cedict_lexicon

    if lexicon is None:
        lexicon = cedict_lexicon(tables["src"].tokens, tables["tgt"].tokens)
    try:
        mapper = CrossLingualMap(random_state=random_state).fit(
            tables["src"], tables["tgt"], lexicon
        )
    except ValueError as error:
        raise InputError(
            f"cannot map the target words into the source space: {error}; "
            "plot one side (--side src or tgt)"
        ) from None
    src = _words(tables["src"], min_freq, include_specials)
    tgt = _words(tables["tgt"], min_freq, include_specials)
    src_rows = _normalized_like(src.vectors, mapper.src_words_.vectors)
    tgt_rows = _normalized_like(tgt.vectors, mapper.tgt_words_.vectors)
    tgt_rows = tgt_rows @ np.linalg.pinv(mapper.mapping_.astype(np.float64))
    links = sorted(
        {
            (src.index[zh], len(src) + tgt.index[en])
            for zh, en in lexicon
            if zh in src.index and en in tgt.index
        }
    )
    return {"src": src, "tgt": tgt}, np.vstack([src_rows, tgt_rows]), links


def _normalized_like(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``alignment.normalize`` with the centre taken from ``reference`` (the
    vocabulary the map was fitted on), so rows outside it (special tokens)
    land where the map expects them."""
    centre = unit_rows(reference).mean(axis=0)
    return unit_rows(unit_rows(vectors) - centre)


def label_mask(
    freqs: np.ndarray,
    sides: list[str],
    special: np.ndarray,
    n_labels: int,
    first: np.ndarray | None = None,
    last: np.ndarray | None = None,
) -> np.ndarray:
    """Every point of a side with at most ``n_labels`` words, else its
    ``n_labels`` best by ``label_ranks``; special tokens always."""
    labelled = special.copy()
    rank = label_ranks(freqs, special, first, last)
    sides_array = np.array(sides)
    for side in dict.fromkeys(sides):
        rows = np.flatnonzero((sides_array == side) & ~special)
        order = rows[np.argsort(rank[rows], kind="stable")]
        labelled[order[:n_labels]] = True
    return labelled


def label_ranks(
    freqs: np.ndarray,
    special: np.ndarray,
    first: np.ndarray | None = None,
    last: np.ndarray | None = None,
) -> np.ndarray:
    """Each point's place in the labelling order (0 first): special tokens,
    then ``first`` (group members), then the rest, then ``last`` (function
    words); within each, the most frequent first."""
    tier = np.where(special, 0, 2)
    if first is not None:
        tier = np.where(first & ~special, 1, tier)
    if last is not None:
        tier = np.where(last & ~special, 3, tier)
    order = np.lexsort((-freqs, tier))  # by tier, then by frequency
    rank = np.empty(len(freqs), dtype=np.int64)
    rank[order] = np.arange(len(freqs))
    return rank


def _label_note(labelled, special, sides, first, last) -> str:
    """Which words carry labels and why, in words."""
    words = labelled & ~special
    if words.sum() == (~special).sum():
        return "every word labelled"
    per_side = " per side" if len(set(sides)) > 1 else ""
    if first is None:
        return f"labels: the {int(words.sum())} most frequent words{per_side}"
    n_first = int((words & first).sum())
    n_rest = int((words & ~first).sum())
    note = f"labels: the {n_first} words of the topic groups"
    if n_first < int((first & ~special).sum()):
        note = f"labels: the {n_first} most frequent words of the topic groups"
    if n_rest:
        note += f", then the {n_rest} most frequent content words"
    if last is not None and (labelled & last).any():
        note += " and function words"
    return note + per_side


def group_categories(
    words: list[str], groups: dict[str, list[str]], links: list[tuple[int, int]]
) -> list[str]:
    """Each point's topic group (``OTHER`` if none). A target word in no
    group takes the group of a source word it translates (``links``)."""
    group_of = {w: name for name, members in groups.items() for w in members}
    categories = [SPECIAL if w in SPECIALS else group_of.get(w, OTHER) for w in words]
    for i, j in links:
        if categories[j] == OTHER and categories[i] not in (OTHER, SPECIAL):
            categories[j] = categories[i]
    return categories


def chance_categories(
    words: list[str], sides: list[str], analysis: dict | None
) -> list[str]:
    """ "above chance" for a word in a top pair, group or chosen pair that the
    analysis found above chance; "not above chance" for a word tested only in
    findings that were not; "not tested" for the rest."""
    if analysis is None:
        raise InputError(
            "colouring by chance needs an analysis: run `seqembed analyze RUN` "
            "first (or give --analysis FILE)"
        )
    verdicts = {side: word_verdicts(analysis, side) for side in dict.fromkeys(sides)}
    return [
        SPECIAL if w in SPECIALS else verdicts[s].get(w, "not tested")
        for w, s in zip(words, sides)
    ]


def word_verdicts(analysis: dict, side: str) -> dict[str, str]:
    """Word -> "above chance" / "not above chance" for one side's findings.

    The tests of each figure are in the order of its entries (see
    ``EmbeddingAnalysis._judge``): the top pairs, the groups with a p-value,
    the chosen pairs with a cosine.
    """
    result = analysis.get("sides", {}).get(side)
    if result is None:
        raise InputError(
            f"the analysis has no {side} side: run `seqembed analyze RUN --side "
            f"{'both' if side == 'tgt' else side}`"
        )
    members = {
        "similar_pairs": [[p["a"], p["b"]] for p in result["similar_pairs"]["pairs"]],
        "groups": [
            g["words"]
            for g in (result["groups"] or {}).get("groups", [])
            if g["p_value"] is not None
        ],
        "chosen_pairs": [
            [p["a"], p["b"]]
            for p in result["chosen_pairs"] or []
            if p["cosine"] is not None
        ],
    }
    verdicts: dict[str, str] = {}
    for figure, word_sets in members.items():
        tests = [t for t in result["findings"]["tests"] if t["figure"] == figure]
        if len(tests) != len(word_sets):
            raise InputError(
                f"the analysis lists {len(tests)} {figure} tests for "
                f"{len(word_sets)} entries; was it written by another version?"
            )
        for test, word_set in zip(tests, word_sets):
            for word in word_set:
                if test["above_chance"]:
                    verdicts[word] = "above chance"
                else:
                    verdicts.setdefault(word, "not above chance")
    return verdicts


def caption(m: EmbeddingMap, hidden: int = 0) -> str:
    """The picture's caption: how the points were placed, the dictionary
    lines, which words are labelled and why (``hidden``: labels a drawing
    left out where they would overlap)."""
    caption = m.method
    if m.links:
        caption += f"; lines: {len(m.links)} dictionary pairs"
    if m.label_note == "every word labelled" and hidden:
        return caption + f"; labels: every word but {hidden}, left out where they "
        "would overlap"
    if m.label_note:
        caption += "; " + m.label_note
        if hidden:
            caption += f" ({hidden} left out where they would overlap)"
        return caption
    if not m.labelled.all():
        sides = np.array(m.sides)
        shown = max(
            int((m.labelled & ~m.special & (sides == s)).sum()) for s in set(m.sides)
        )
        per_side = " per side" if len(set(m.sides)) > 1 else ""
        caption += f"; labels: the {shown} most frequent words{per_side}"
    return caption
