"""The embedding map drawn: a matplotlib Figure (PNG/SVG/PDF) or a plotly
page, both from one ``embedding_map.EmbeddingMap``.

Figures are built inside ``fonts.cjk_rc()`` (``figures.save_figure`` saves
them inside it too), so Chinese labels are drawn with a font that has them.
"""

from __future__ import annotations

import numpy as np

from seqembed.report.embedding_map import (
    DEFAULT_LABELS,
    OTHER,
    SIDE_NAMES,
    SPECIAL,
    EmbeddingMap,
    caption,
)
from seqembed.report.figures import new_figure, standalone_html
from seqembed.report.fonts import cjk_rc, html_font_stack

NEUTRAL = "#b0b0b0"
SIDE_MARKERS = {"src": "o", "tgt": "^"}  # matplotlib
PLOTLY_MARKERS = {"src": "circle", "tgt": "triangle-up"}
PALETTE = (  # matplotlib's tab10 without its grey, which means "other" here
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf",
)  # fmt: skip
VERDICT_COLORS = {
    "above chance": "#d62728",
    "not above chance": "#1f77b4",
    "not tested": NEUTRAL,
}


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
        labels = _annotate(ax, m, fontsize=10 if small else 7)
        if scatter is not None:
            figure.colorbar(scatter, ax=ax, label="training frequency")
        handles = ax.get_legend_handles_labels()[0] + shapes
        if handles:
            # Beside the map, never over its points.
            ax.legend(
                handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1),
                borderaxespad=0, fontsize=8, markerscale=0.8,
            )  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(m.title)
        ax.set_xlabel(caption(m), wrap=True)
        hidden = _drop_overlapping(figure, labels)
        ax.set_xlabel(caption(m, hidden), wrap=True)
    return figure


def _annotate(ax, m: EmbeddingMap, fontsize: float) -> list:
    """The labels as Annotations, in the map's labelling order."""
    rows = np.flatnonzero(m.labelled)
    if m.label_rank is not None:
        rows = rows[np.argsort(m.label_rank[rows], kind="stable")]
    return [
        ax.annotate(
            m.words[i],
            m.xy[i],
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=fontsize,
            color="#555555" if m.special[i] else "black",
            style="italic" if m.special[i] else "normal",
        )
        for i in rows
    ]


def _drop_overlapping(figure, labels: list, pad: float = 2.0) -> int:
    """Hide each label whose box overlaps one placed before it (the order
    is the map's priority); the number hidden."""
    figure.canvas.draw()  # lays the figure out: the boxes are final
    renderer = figure.canvas.get_renderer()
    placed, hidden = [], 0
    for label in labels:
        box = label.get_window_extent(renderer).expanded(1, 1).padded(pad)
        if any(box.overlaps(other) for other in placed):
            label.set_visible(False)
            hidden += 1
        else:
            placed.append(box)
    return hidden


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
                if name in (OTHER, "not tested"):  # the background: quieter
                    faint = {**style, "s": style["s"] * 0.6, "alpha": 0.5}
                    ax.scatter(*m.xy[members].T, color=color, label=label, **faint)
                else:
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
                "text": caption(m), "showarrow": False, "xref": "paper",
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
