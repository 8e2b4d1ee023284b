"""The embedding map: a run's word vectors as labelled points in 2-D.

::

    tables --embedding_map--> EmbeddingMap --map_figure--> matplotlib Figure
                              (plain data)  --map_html----> HTML (plotly)
    Figure --figures.save_figure--> PNG / SVG / PDF

``EmbeddingMap`` holds everything a drawing needs (2-D positions, words,
sides, frequencies, which points are labelled, colour categories, dictionary
links), so the matplotlib and plotly renderings show the same picture.

Figures are built inside ``fonts.cjk_rc()`` (``figures.save_figure`` saves
them inside it too), so Chinese labels are drawn with a font that has them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError
from seqembed.report.figures import new_figure, standalone_html
from seqembed.report.fonts import cjk_rc, html_font_stack
from seqembed.report.projection import Projection, describe, unit_rows
from seqembed.vectors.table import EmbeddingTable

SIDES = ("src", "tgt", "both")
COLORS = ("group", "frequency", "chance")
DEFAULT_LABELS = 40  # label every word of a map this small, else the N most frequent
OTHER = "other"  # group colouring: a word in no group
SPECIAL = "special token"
NEUTRAL = "#b0b0b0"
SIDE_MARKERS = {"src": "o", "tgt": "^"}  # matplotlib
PLOTLY_MARKERS = {"src": "circle", "tgt": "triangle-up"}
SIDE_NAMES = {"src": "source (Chinese)", "tgt": "target (English)"}
PALETTE = (  # matplotlib's tab10 without its grey, which means "other" here
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf",
)  # fmt: skip
VERDICT_COLORS = {
    "above chance": "#d62728",
    "not above chance": "#1f77b4",
    "not tested": NEUTRAL,
}


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
    categories = None
    if color == "group":
        categories = group_categories(words, groups or {}, links)
    elif color == "chance":
        categories = chance_categories(words, sides, analysis)
    names = " and ".join(SIDE_NAMES[s].split(" (")[0] for s in chosen)
    return EmbeddingMap(
        words=words,
        sides=sides,
        xy=xy,
        freqs=freqs,
        special=special,
        labelled=label_mask(freqs, sides, special, n_labels),
        color=color,
        categories=categories,
        links=links,
        title=f"{names} word embeddings, {len(words)} tokens",
        method=describe(projection) + " of L2-normalised vectors",
    )


def _words(table: EmbeddingTable, min_freq: int, specials: bool) -> EmbeddingTable:
    """The words to draw; never <PAD>, whose vector is zero by construction."""
    table = table.words(min_freq, include_specials=specials)
    return table.select([w for w in table.tokens if w != SPECIALS[0]])


def _both_sides(tables, min_freq, include_specials, lexicon, random_state):
    """Source rows and target rows in one space: each normalised as the
    cross-lingual map expects (unit, centred, unit), and the target rows sent
    back through the map's pseudo-inverse (its transpose when orthogonal)."""
    from seqembed.analysis.alignment import CrossLingualMap, cedict_lexicon

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
    freqs: np.ndarray, sides: list[str], special: np.ndarray, n_labels: int
) -> np.ndarray:
    """Every point of a side with at most ``n_labels`` words, else its
    ``n_labels`` most frequent words; special tokens always."""
    labelled = special.copy()
    sides_array = np.array(sides)
    for side in dict.fromkeys(sides):
        rows = np.flatnonzero((sides_array == side) & ~special)
        order = rows[np.argsort(-freqs[rows], kind="stable")]
        labelled[order[:n_labels]] = True
    return labelled


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


# ------------------------------------------------------------- matplotlib


def category_colors(categories: list[str]) -> dict[str, str]:
    """A colour per category, in order of first appearance; the neutral
    categories ("other", "not tested") grey, verdicts fixed."""
    colors, free = {}, iter(PALETTE * (1 + len(categories) // len(PALETTE)))
    for name in dict.fromkeys(categories):
        if name in (OTHER, SPECIAL):
            colors[name] = NEUTRAL if name == OTHER else "black"
        elif name in VERDICT_COLORS:
            colors[name] = VERDICT_COLORS[name]
        else:
            colors[name] = next(free)
    return colors


def map_figure(m: EmbeddingMap, width: float = 9.0, height: float = 7.5):
    """The embedding map as a matplotlib Figure."""
    small = len(m.words) <= 2 * DEFAULT_LABELS
    with cjk_rc():
        figure = new_figure(width, height)
        ax = figure.add_subplot()
        if m.links:
            _draw_links(ax, m)
        scatter, shapes = _draw_points(ax, m, size=36 if small else 10)
        for i in np.flatnonzero(m.labelled):
            ax.annotate(
                m.words[i],
                m.xy[i],
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=10 if small else 7,
                color="#555555" if m.special[i] else "black",
                style="italic" if m.special[i] else "normal",
            )
        if scatter is not None:
            figure.colorbar(scatter, ax=ax, label="training frequency")
        handles = ax.get_legend_handles_labels()[0] + shapes
        if handles:
            ax.legend(handles=handles, loc="best", fontsize=8, markerscale=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(m.title)
        ax.set_xlabel(_caption(m))
    return figure


def _draw_links(ax, m: EmbeddingMap) -> None:
    from matplotlib.collections import LineCollection

    # Fainter as they multiply: hundreds of full-strength lines hide the map.
    alpha = 0.5 if len(m.links) <= 50 else 0.2
    segments = [[m.xy[i], m.xy[j]] for i, j in m.links]
    ax.add_collection(
        LineCollection(segments, colors="#777777", linewidths=0.6, alpha=alpha)
    )


def _draw_points(ax, m: EmbeddingMap, size: float):
    """Scatter the words (a marker shape per side) and the special tokens.

    Returns the scatter to hang a colour bar on (colouring by frequency) and
    legend handles for the marker shapes (two sides).
    """
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D

    sides = np.array(m.sides)
    categories = np.array(m.categories) if m.categories else None
    scatter, named = None, set()
    for side in dict.fromkeys(m.sides):
        rows = ~m.special & (sides == side)
        style = {"marker": SIDE_MARKERS[side], "s": size}
        if categories is None:  # frequency
            norm = LogNorm(vmin=1, vmax=max(2, int(m.freqs.max())))
            scatter = ax.scatter(
                *m.xy[rows].T, c=np.maximum(m.freqs[rows], 1), cmap="viridis",
                norm=norm, **style,
            )  # fmt: skip
            continue
        for name, color in category_colors(m.categories).items():
            members = rows & (categories == name)
            if members.any():
                # One legend entry per colour; the shapes get their own below.
                label = None if name in named else name
                named.add(name)
                ax.scatter(*m.xy[members].T, color=color, label=label, **style)
    if m.special.any():
        ax.scatter(*m.xy[m.special].T, marker="X", s=70, color="black", label=SPECIAL)
    shapes = []
    if len(set(m.sides)) > 1:
        labels = {"src": SIDE_NAMES["src"], "tgt": SIDE_NAMES["tgt"] + ", mapped"}
        shapes = [
            Line2D([], [], ls="", marker=marker, color="#666666", label=labels[side])
            for side, marker in SIDE_MARKERS.items()
        ]
    return scatter, shapes


def _caption(m: EmbeddingMap) -> str:
    caption = m.method
    if m.links:
        caption += f"; lines: {len(m.links)} dictionary pairs"
    if not m.labelled.all():
        sides = np.array(m.sides)
        shown = max(
            int((m.labelled & ~m.special & (sides == s)).sum()) for s in set(m.sides)
        )
        per_side = " per side" if len(set(m.sides)) > 1 else ""
        caption += f"; labels: the {shown} most frequent words{per_side}"
    return caption


# ------------------------------------------------------------------ plotly


def map_plotly(m: EmbeddingMap):
    """The embedding map as a plotly Figure: hover shows word, side, frequency."""
    import plotly.graph_objects as go

    figure = go.Figure()
    if m.links:
        xs, ys = [], []
        for i, j in m.links:
            xs += [m.xy[i, 0], m.xy[j, 0], None]
            ys += [m.xy[i, 1], m.xy[j, 1], None]
        figure.add_trace(
            go.Scatter(
                x=xs, y=ys, mode="lines", name="dictionary pairs",
                line={"color": "#999999", "width": 0.7}, hoverinfo="skip",
            )
        )  # fmt: skip
    categories = m.categories or ["word"] * len(m.words)
    categories = [SPECIAL if s else c for c, s in zip(categories, m.special)]
    colors = category_colors(categories)
    for side in dict.fromkeys(m.sides):
        for name in dict.fromkeys(categories):
            rows = [
                i
                for i, (c, s) in enumerate(zip(categories, m.sides))
                if c == name and s == side
            ]
            if rows:
                figure.add_trace(_plotly_points(m, rows, name, side, colors[name]))
    figure.update_layout(
        title=m.title,
        font={"family": html_font_stack()},
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
        plot_bgcolor="white",
        annotations=[
            {
                "text": _caption(m), "showarrow": False, "xref": "paper",
                "yref": "paper", "x": 0, "y": -0.05, "font": {"size": 11},
            }
        ],
    )  # fmt: skip
    return figure


def _plotly_points(m: EmbeddingMap, rows: list[int], name, side, color):
    import plotly.graph_objects as go

    frequency = m.color == "frequency" and name != SPECIAL
    marker = {
        "symbol": "x" if name == SPECIAL else PLOTLY_MARKERS[side],
        "size": 10 if name == SPECIAL else 8,
        "color": np.log10(np.maximum(m.freqs[rows], 1)) if frequency else color,
    }
    if frequency:  # one colour scale for both sides, shown once
        marker.update(
            colorscale="Viridis",
            cmin=0.0,
            cmax=max(np.log10(max(int(m.freqs.max()), 2)), 0.1),
            showscale=side == m.sides[0],
            colorbar={"title": "log10 frequency"},
        )
    name = "words" if frequency else name
    label = name if len(set(m.sides)) == 1 else f"{name} ({side})"
    return go.Scatter(
        x=m.xy[rows, 0],
        y=m.xy[rows, 1],
        mode="markers+text",
        name=label,
        text=[m.words[i] if m.labelled[i] else "" for i in rows],
        textposition="top right",
        marker=marker,
        customdata=[[m.words[i], SIDE_NAMES[side], int(m.freqs[i])] for i in rows],
        hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>"
        "frequency %{customdata[2]}<extra></extra>",
    )


def map_html(m: EmbeddingMap) -> str:
    """A self-contained HTML page: plotly.js inlined, and the Chinese glyphs
    of the page's words embedded as a font, so it works offline anywhere."""
    return standalone_html(map_plotly(m))
