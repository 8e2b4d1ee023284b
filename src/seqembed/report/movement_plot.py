"""Pictures of the embeddings moving during training.

Training saves a snapshot per epoch (``RUN/embeddings/epoch-NNNN.pt``).
``movement_frames`` places the same words of every snapshot in one 2-D
space: the projection is fitted once, on all snapshots stacked::

    epoch 0   [ n_words x dim ]  \\
    epoch 1   [ n_words x dim ]   |  stack (E*n, dim) -> Projection -> (E*n, 2)
    ...                           |  -> split back into E frames of (n, 2)
    epoch E-1 [ n_words x dim ]  /

so a point's shift between panels is movement in the embedding space, not a
new random layout. PCA is the default: it is linear, so a shift in the
picture is a shift of the vectors (t-SNE also works, but bends distances).
The mean relative movement per epoch comes from ``movement.EmbeddingMovement``.

Outputs: small multiples with the movement curve below (PNG/SVG/PDF), an
animated GIF, or a plotly page with a slider (HTML).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqembed.analysis.movement import EmbeddingMovement, read_snapshot, snapshot_paths
from seqembed.report.figures import new_figure, rgba_array
from seqembed.report.fonts import cjk_rc, html_font_stack
from seqembed.report.projection import Projection, describe
from seqembed.vectors.table import EmbeddingTable

MAX_PANELS = 12
MAX_FRAMES = 60  # GIF and HTML animations: a frame for every snapshot up to this
LABEL_WORDS = 25  # label every word up to this many, else the most frequent


@dataclass
class MovementFrames:
    """The words of one side at each snapshot, in one 2-D space."""

    side: str
    epochs: np.ndarray  # (E,)
    words: list[str]
    freqs: np.ndarray  # (n,)
    xy: np.ndarray  # (E, n, 2)
    step_mean: np.ndarray  # (E,) mean relative move since the previous snapshot
    from_initial_mean: np.ndarray  # (E,) mean relative move since epoch 0
    method: str


def movement_frames(
    run_dir: Path,
    vocab: dict,
    side: str = "src",
    projection: Projection | None = None,
    min_freq: int = 1,
    only: list[str] | None = None,
) -> MovementFrames:
    """Read every snapshot of ``side`` and project them jointly.

    ``vocab``: the run's ``{"tokens", "freqs"}`` for that side (the
    checkpoint's ``src_vocab``/``tgt_vocab``). Special tokens are left out.
    """
    projection = projection or Projection("pca")
    paths = snapshot_paths(run_dir)
    tokens = list(vocab["tokens"])
    final = read_snapshot(paths[-1][1], side, len(tokens))
    chosen = EmbeddingTable(tokens, final, vocab["freqs"]).words(min_freq, only=only)
    index = {token: i for i, token in enumerate(tokens)}
    rows = np.array([index[w] for w in chosen.tokens], dtype=np.int64)
    stacked = np.concatenate(
        [
            read_snapshot(path, side, len(tokens), final.shape[1])[rows]
            for _, path in paths
        ]
    )  # (E * n, dim)
    xy = projection.fit_transform(stacked).reshape(len(paths), len(rows), 2)
    movement = EmbeddingMovement(
        side=side, min_freq=min_freq, only=only, random_state=projection.random_state
    ).fit(run_dir, vocab)
    return MovementFrames(
        side=side,
        epochs=np.array([epoch for epoch, _ in paths]),
        words=chosen.tokens,
        freqs=chosen.freqs,
        xy=xy,
        step_mean=movement.step_mean_,
        from_initial_mean=movement.from_initial_mean_,
        method=describe(projection) + ", fitted on all snapshots at once",
    )


def spread(n_frames: int, n_chosen: int) -> list[int]:
    """``n_chosen`` of ``n_frames`` indices evenly spread, the first and the
    last always."""
    n_chosen = max(2, min(n_chosen, n_frames))
    if n_frames == 1:
        return [0]
    return sorted({round(i) for i in np.linspace(0, n_frames - 1, n_chosen)})


def panel_indices(n_frames: int, n_panels: int = 9) -> list[int]:
    """The snapshots of the small multiples: at most ``MAX_PANELS``."""
    return spread(n_frames, min(n_panels, MAX_PANELS))


def _labelled(frames: MovementFrames) -> np.ndarray:
    order = np.argsort(-frames.freqs, kind="stable")[:LABEL_WORDS]
    mask = np.zeros(len(frames.words), dtype=bool)
    mask[order] = True
    return mask


def _limits(xy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Shared axis limits for every panel, with a margin for labels."""
    low, high = xy.reshape(-1, 2).min(axis=0), xy.reshape(-1, 2).max(axis=0)
    pad = 0.08 * np.maximum(high - low, 1e-9)
    return (low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1])


def _draw_frame(ax, frames: MovementFrames, index: int, small_text: bool) -> None:
    from matplotlib.collections import LineCollection

    xlim, ylim = _limits(frames.xy)
    few = len(frames.words) <= 2 * LABEL_WORDS
    if index > 0:  # where the words were at the first snapshot, faintly
        ax.scatter(*frames.xy[0].T, s=6 if few else 2, color="#d0d0d0")
        if few:  # and the way each came
            trails = np.stack([frames.xy[0], frames.xy[index]], axis=1)  # (n, 2, 2)
            ax.add_collection(LineCollection(trails, colors="#c0c0c0", linewidths=0.6))
    ax.scatter(*frames.xy[index].T, s=12 if few else 3, color="#1f77b4")
    for i in np.flatnonzero(_labelled(frames)):
        ax.annotate(
            frames.words[i], frames.xy[index, i], xytext=(2, 2),
            textcoords="offset points", fontsize=6 if small_text else 9,
        )  # fmt: skip
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"epoch {frames.epochs[index]}", fontsize=9)


def _draw_curve(ax, frames: MovementFrames) -> None:
    ax.plot(frames.epochs, frames.step_mean, marker=".", label="since previous")
    ax.plot(frames.epochs, frames.from_initial_mean, label="since epoch 0")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean relative move")
    ax.legend(fontsize=8)


def movement_figure(frames: MovementFrames, n_panels: int = 9):
    """Small multiples of chosen snapshots and the mean movement per epoch."""
    chosen = panel_indices(len(frames.epochs), n_panels)
    columns = min(len(chosen), 3 if len(chosen) <= 9 else 4)
    rows = math.ceil(len(chosen) / columns)
    with cjk_rc():
        figure = new_figure(3.2 * columns, 3.0 * rows + 2.6)
        grid = figure.add_gridspec(rows + 1, columns, height_ratios=[3] * rows + [2.4])
        for k, index in enumerate(chosen):
            ax = figure.add_subplot(grid[k // columns, k % columns])
            _draw_frame(ax, frames, index, small_text=True)
        _draw_curve(figure.add_subplot(grid[rows, :]), frames)
        figure.suptitle(
            f"{frames.side} embeddings over training, {len(frames.words)} words "
            f"({frames.method}; grey: epoch {frames.epochs[0]})",
            fontsize=10,
        )
    return figure


def write_gif(
    frames: MovementFrames,
    path: Path,
    max_frames: int = MAX_FRAMES,
    ms_per_frame: int = 300,
) -> Path:
    """An animated GIF, a frame per snapshot (at most ``max_frames``, evenly
    spread): the map and the movement curve with the epoch marked."""
    from PIL import Image

    from seqembed.files import atomic_write

    # One figure for all frames, its layout fixed after the first: only the
    # map is redrawn and the epoch marker moved (3x faster than a new figure).
    images = []
    with cjk_rc():
        figure = new_figure(6.0, 7.0)
        grid = figure.add_gridspec(2, 1, height_ratios=[3, 1.2])
        ax, curve = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
        _draw_curve(curve, frames)
        marker = curve.axvline(frames.epochs[0], color="#999999", lw=0.8)
        for index in spread(len(frames.epochs), max_frames):
            ax.clear()
            _draw_frame(ax, frames, index, small_text=False)
            marker.set_xdata([frames.epochs[index]] * 2)
            rgb = Image.fromarray(rgba_array(figure)).convert("RGB")
            # Octree quantisation: 6x faster than Pillow's default median cut.
            images.append(rgb.quantize(256, method=Image.Quantize.FASTOCTREE))
            figure.set_layout_engine("none")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(
        path,
        lambda out: images[0].save(
            out, format="GIF", save_all=True, append_images=images[1:],
            duration=ms_per_frame, loop=0,
        ),
    )  # fmt: skip
    return path


def movement_plotly(frames: MovementFrames, max_frames: int = MAX_FRAMES):
    """A plotly Figure with a frame per snapshot (at most ``max_frames``,
    evenly spread) and a slider."""
    import plotly.graph_objects as go

    labelled = _labelled(frames)
    text = [w if shown else "" for w, shown in zip(frames.words, labelled)]

    def points(index: int):
        return go.Scatter(
            x=frames.xy[index, :, 0], y=frames.xy[index, :, 1],
            mode="markers+text", text=text, textposition="top right",
            hovertext=frames.words, hoverinfo="text", marker={"size": 7},
        )  # fmt: skip

    chosen = spread(len(frames.epochs), max_frames)
    (xlim, ylim), names = _limits(frames.xy), [str(frames.epochs[i]) for i in chosen]
    steps = [
        {"label": name, "method": "animate",
         "args": [[name], {"mode": "immediate", "frame": {"duration": 0}}]}
        for name in names
    ]  # fmt: skip
    return go.Figure(
        data=[points(0)],
        frames=[go.Frame(data=[points(i)], name=n) for i, n in zip(chosen, names)],
        layout=go.Layout(
            title=f"{frames.side} embeddings over training ({frames.method})",
            font={"family": html_font_stack()},
            xaxis={"range": list(xlim), "visible": False},
            yaxis={"range": list(ylim), "visible": False},
            plot_bgcolor="white",
            sliders=[{"steps": steps, "currentvalue": {"prefix": "epoch "}}],
            updatemenus=[
                {
                    "type": "buttons",
                    "showactive": False,
                    "buttons": [
                        {
                            "label": "play",
                            "method": "animate",
                            "args": [None, {"frame": {"duration": 300}}],
                        }
                    ],
                }
            ],
        ),  # fmt: skip
    )
