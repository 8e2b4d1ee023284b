"""Figure plumbing shared by the pictures: a Figure without pyplot, saving
it as PNG/SVG/PDF with the CJK font, and self-contained plotly HTML.

No pyplot anywhere: a ``matplotlib.figure.Figure`` on its own Agg canvas has
no global state (no current figure, no figure list to leak memory into) and
needs no ``matplotlib.use``. ``savefig`` to SVG or PDF swaps in that format's
canvas by itself.
"""

from __future__ import annotations

from pathlib import Path

from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.report.fonts import cjk_rc, font_face_css

IMAGE_FORMATS = ("png", "svg", "pdf")
DPI = 150


def new_figure(width: float, height: float):
    """A Figure on its own Agg canvas. Build it inside ``fonts.cjk_rc()``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def image_format(path: Path, format: str | None = None) -> str:
    """The format asked for, else the one the file name ends in."""
    format = (format or Path(path).suffix.lstrip(".")).lower()
    if not format:
        raise InputError("no file format: give the file a suffix or --format", path)
    return format


def save_figure(figure, path: Path, format: str | None = None) -> Path:
    """Write a Figure as PNG, SVG or PDF (from the suffix unless given)."""
    path = Path(path)
    format = image_format(path, format)
    if format not in IMAGE_FORMATS:
        raise InputError(f"cannot write a figure as {format!r} (png, svg or pdf)")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Tick labels and the like are made while drawing: draw in the font too.
    with cjk_rc():
        atomic_write(path, lambda out: figure.savefig(out, format=format, dpi=DPI))
    return path


def rgba_array(figure):
    """The Figure drawn on its Agg canvas: (height, width, 4) uint8."""
    import numpy as np

    with cjk_rc():
        figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba()).copy()


def standalone_html(figure, text: str = "") -> str:
    """A plotly Figure as one HTML page that works offline anywhere:
    plotly.js inline, and an ``@font-face`` rule with the glyphs of every
    string in the figure (words, titles, legend entries) and of ``text``,
    from the bundled Noto Sans SC."""
    import json

    strings = _strings(json.loads(figure.to_json()))
    html = figure.to_html(include_plotlyjs=True, full_html=True)
    style = f"<style>{font_face_css(''.join(strings) + text)}</style>"
    return html.replace("</head>", style + "</head>", 1)


def _strings(data) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in [k, *_strings(v)]]
    if isinstance(data, list):
        return [s for item in data for s in _strings(item)]
    return []


def write_text(text: str, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    atomic_write(path, lambda out: out.write(data))
    return path
