"""The embedding map of a run as a matplotlib Figure.

::

    fig = seqembed.plot_map(run, groups="builtin")   # t-SNE, coloured by group
    fig.savefig("map.png")                           # Chinese labels included

The same picture as ``seqembed plot``: ``seqembed.report.embedding_map``
places and colours the words; this module chooses its inputs.
"""

from __future__ import annotations

from pathlib import Path

from seqembed.api.analysis import AnalysisResult, resolve_groups
from seqembed.api.runs import Run, load_run
from seqembed.errors import InputError


def _colouring(color, groups, data) -> tuple[str, dict]:
    """The colouring asked for (or the default) and the groups it uses."""
    chosen = resolve_groups(groups) or dict(
        (data or {}).get("settings", {}).get("groups") or {}
    )
    color = color or ("group" if chosen else "frequency")
    if color == "group" and not chosen:
        raise InputError(
            "colouring by group needs groups (a dict, a YAML file, builtin or "
            "design), or an analysis made with groups"
        )
    if color == "chance" and data is None:
        raise InputError(
            "colouring by chance needs an analysis: analysis=seqembed.analyze(run)"
        )
    return color, chosen


def plot_map(
    run: Run | str | Path,
    side: str = "src",
    method: str = "tsne",
    color: str | None = None,
    groups: str | Path | dict[str, list[str]] | None = None,
    analysis: AnalysisResult | dict | str | Path | None = None,
    labels: int = 40,
    min_freq: int = 1,
    specials: bool = True,
    perplexity: float = 30.0,
    random_state: int = 0,
    threads: int = 1,
    checkpoint: str = "best",
):
    """Draw a run's words as labelled points in 2-D; returns a
    ``matplotlib.figure.Figure`` (not shown: save it, or let a notebook
    display it).

    ``side``: "src", "tgt" or "both" (the target mapped into the source
    space by the cross-lingual map, dictionary pairs joined). ``method``:
    "tsne", "pca" or "umap" (``pip install 'seqembed[umap]'``), on
    L2-normalised vectors. ``color``: "group" (default when ``groups`` are
    known: given, or the analysis'), "frequency", or "chance" (each word's
    verdict from ``analysis``: an ``AnalysisResult``, its dict, an
    ``analysis.json``, else the run's ``analysis/analysis.json``).
    ``labels``: label every word up to this many per side, else the most
    frequent. ``specials``: draw <SOS>, <EOS>, <UNK> too. ``checkpoint``:
    which file of a run folder, "best" or "last", as in ``load_run``.
    """
    from seqembed.report.embedding_map import embedding_map
    from seqembed.report.map_drawing import map_figure
    from seqembed.report.projection import Projection

    run = run if isinstance(run, Run) else load_run(run, checkpoint)
    if labels < 0 or min_freq < 0:
        raise InputError("labels and min_freq must not be negative")
    if perplexity <= 0 or threads < 1:
        raise InputError("perplexity must be positive and threads at least 1")
    data = _analysis_data(analysis, run)
    color, chosen = _colouring(color, groups, data)
    projection = Projection(
        method=method, perplexity=perplexity, random_state=random_state, n_jobs=threads
    )
    m = embedding_map(
        run.tables(specials=True).as_dict(),
        side=side,
        projection=projection,
        color=color,
        groups=chosen,
        analysis=data,
        n_labels=labels,
        min_freq=min_freq,
        include_specials=specials,
    )
    return map_figure(m)


def _analysis_data(analysis, run: Run) -> dict | None:
    """The analysis as plain data: given, or the run's saved one, or None."""
    if isinstance(analysis, AnalysisResult):
        return analysis.data
    if isinstance(analysis, dict):
        return analysis
    if analysis is not None:
        return AnalysisResult.from_json(analysis).data
    saved = run.path / "analysis" / "analysis.json"
    return AnalysisResult.from_json(saved).data if saved.is_file() else None
