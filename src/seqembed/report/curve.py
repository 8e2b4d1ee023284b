"""The report's training curve: losses and validation scores by epoch, as a
plotly figure (plain data), with the epoch where overfitting starts marked.

Both axes start at 0 and carry round ticks (1, 2 or 5 times a power of ten),
each axis its own: plotly's default lines the right axis' ticks up with the
left axis' grid, which gave a BLEU axis with ticks at 25.2, 20.07, ...,
-0.47.
"""

from __future__ import annotations

import math

MIN_RISE = 0.01  # validation loss must end 1% above its minimum to count
N_TICKS = 5  # about this many intervals per axis
LINES = (
    ("train_loss", "training loss", "y"),
    ("valid_loss", "validation loss", "y"),
    ("valid_bleu", "validation BLEU", "y2"),
    ("valid_chrf", "validation chrF", "y2"),
)
MARK_COLOR = "#555555"


def nice_step(top: float, n_ticks: int = N_TICKS) -> float:
    """A round tick step (1, 2 or 5 x 10^k) for an axis from 0 to ``top``."""
    if not top > 0 or not math.isfinite(top):
        return 1.0
    raw = top / n_ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # not reached: raw <= 10 * power by construction


def axis_from_zero(values: list[float], title: str) -> dict:
    """A plotly axis from 0 to the first round tick above every value."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    top = max([*finite, 0.0])
    step = nice_step(top)
    end = step * max(1, math.ceil(top / step - 1e-9))
    if end <= top:  # the highest point on the frame line: one step more room
        end += step
    return {
        "title": {"text": title},
        "range": [0, end],
        "tickmode": "linear",
        "tick0": 0,
        "dtick": step,
        "rangemode": "tozero",
        "zeroline": False,
    }


def overfitting_epoch(metrics: list[dict]) -> int | None:
    """The first epoch after validation loss was lowest, when it then rises
    (ends at least ``MIN_RISE`` above its minimum) while training loss keeps
    falling; None when that does not happen."""
    rows = [m for m in metrics if _has(m, "valid_loss") and _has(m, "train_loss")]
    if len(rows) < 3:
        return None
    best = min(range(len(rows)), key=lambda i: rows[i]["valid_loss"])
    if best >= len(rows) - 1:
        return None
    lowest, last = rows[best], rows[-1]
    rising = last["valid_loss"] > lowest["valid_loss"] * (1 + MIN_RISE)
    falling = last["train_loss"] < lowest["train_loss"]
    return int(rows[best + 1]["epoch"]) if rising and falling else None


def curve_figure(metrics: list[dict]) -> dict | None:
    """A plotly figure (plain data): losses on the left axis, validation
    BLEU and chrF on the right one, by epoch; a dashed line where
    overfitting starts."""
    if not metrics:
        return None
    epochs = [m["epoch"] for m in metrics]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": epochs,
            "y": [m.get(key) for m in metrics],
            "yaxis": axis,
            "line": {"dash": "dot"} if axis == "y2" else {},
        }
        for key, name, axis in LINES
        if any(key in m for m in metrics)
    ]
    values = {"y": [], "y2": []}
    for trace in data:
        values[trace["yaxis"]] += trace["y"]
    layout = {
        "height": 380,
        "margin": {"l": 60, "r": 60, "t": 30, "b": 50},
        "xaxis": {"title": {"text": "epoch"}, "tickformat": "d"},
        "yaxis": axis_from_zero(values["y"], "loss"),
        "yaxis2": {
            **axis_from_zero(values["y2"], "BLEU / chrF"),
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
        },
        "legend": {"orientation": "h", "y": -0.2},
    }
    start = overfitting_epoch(metrics)
    if start is not None:
        layout["shapes"] = [_mark(start)]
        layout["annotations"] = [
            {
                "x": start,
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "text": f"overfitting from epoch {start}",
                "font": {"color": MARK_COLOR},
            }
        ]
    return {"data": data, "layout": layout}


def overfitting_sentence(metrics: list[dict]) -> str:
    """The overfitting mark in words, for the summary ("" when none)."""
    start = overfitting_epoch(metrics)
    if start is None:
        return ""
    rows = [m for m in metrics if _has(m, "valid_loss")]
    lowest = min(rows, key=lambda m: m["valid_loss"])
    return (
        f"validation loss was lowest at epoch {lowest['epoch']} "
        f"({lowest['valid_loss']:.3f}) and then rose while training loss fell: "
        f"overfitting from epoch {start}"
    )


def _mark(epoch: int) -> dict:
    return {
        "type": "line",
        "x0": epoch,
        "x1": epoch,
        "y0": 0,
        "y1": 1,
        "xref": "x",
        "yref": "paper",
        "line": {"color": MARK_COLOR, "dash": "dash", "width": 1.5},
    }


def _has(row: dict, key: str) -> bool:
    value = row.get(key)
    return value is not None and math.isfinite(value)
