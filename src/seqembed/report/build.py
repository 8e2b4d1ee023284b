"""One self-contained HTML report of a run: ``seqembed report RUN``.

Two steps, so the page is a function of plain data:

    build_report(run)    ->  content: which checkpoint, summary and scores
                             (summary), training curve (curve), sample
                             translations with attention, embedding map
                             (map_data), analysis and stability sections (in
                             analysis.text's wording)
    html.render_html(content) -> one HTML file

The file works offline and on a machine with no Chinese font: plotly.js, the
page's script and a subset of a Chinese font are inlined, and its
Content-Security-Policy forbids the page any network request at all.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from seqembed.analysis.text import sections
from seqembed.analysis.wording import Section
from seqembed.data.prepare import read_splits
from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.nmt.checkpoint import load_checkpoint, load_tables, resolve_checkpoint
from seqembed.nmt.evaluation import Translator
from seqembed.nmt.metrics_log import read_metrics
from seqembed.report.curve import curve_figure
from seqembed.report.map_data import map_side
from seqembed.report.summary import checkpoint_line, scores_sentence, summary_rows

log = logging.getLogger(__name__)

ANALYSIS_FILE = "analysis/analysis.json"


@dataclass(frozen=True)
class ReportSettings:
    sides: tuple[str, ...] = ("src", "tgt")  # which embeddings the map shows
    max_words: int = 3000  # words on the map per side, most frequent first
    min_freq: int = 1  # words seen fewer times in training are left off the map
    projection: str = "tsne"  # projection.METHODS
    n_samples: int = 8  # sample translations shown
    random_state: int = 0
    checkpoint: str = "best"  # a run directory's best.pt (else last.pt) or "last"
    device: str = "cpu"  # where the sample translations are decoded


def write_report(
    run: Path,
    out: Path | None = None,
    settings: ReportSettings | None = None,
    analysis: dict | None = None,
) -> Path:
    """Write the report of ``run`` (a run directory or a checkpoint) to
    ``out`` (default RUN/report.html), atomically; return its path."""
    from seqembed.report.html import render_html

    content = build_report(run, settings, analysis)
    out = Path(out) if out else Path(content["run"]) / "report.html"
    page = render_html(content).encode("utf-8")
    atomic_write(out, lambda handle: handle.write(page))
    return out


# ---------------------------------------------------------------- content


def build_report(
    run: Path, settings: ReportSettings | None = None, analysis: dict | None = None
) -> dict:
    """Everything the page shows, as plain data. ``analysis``: an
    ``analyze_run`` result to use instead of RUN/analysis/analysis.json."""
    settings = settings or ReportSettings()
    checkpoint = resolve_checkpoint(Path(run), settings.checkpoint)
    run_dir = checkpoint.parent
    analysis_from = None
    if analysis is None:
        analysis, analysis_from = _analysis(run_dir, checkpoint)
    analysis_sections = _sections(analysis, run_dir, analysis_from)
    state = load_checkpoint(checkpoint)
    translator = Translator.from_state(state, settings.device)
    metrics = read_metrics(run_dir)
    splits = read_splits(run_dir)
    log.info("translating %d test pairs", len(splits["test"]))
    test_outputs = translator.translate([p.src for p in splits["test"]])
    samples = _samples(translator, splits, test_outputs, settings.n_samples)
    return {
        "title": f"seqembed report: {run_dir.name}",
        "run": str(run_dir),
        "checkpoint": checkpoint.name,
        "checkpoint_line": checkpoint_line(checkpoint, state, metrics),
        "summary": summary_rows(state, translator.config, splits, metrics),
        "scores": scores_sentence(translator, splits, test_outputs),
        "config_yaml": yaml.safe_dump(
            state["config"], sort_keys=False, allow_unicode=True
        ),
        "curve": curve_figure(metrics),
        "samples": samples,
        "attention": _attention_figures(translator, [row[1] for row in samples]),
        "map": _map(checkpoint, state, settings),
        "analysis": analysis_sections,
        "analysis_from": analysis_from,
        "stability": _stability(run_dir),
    }


def _map(checkpoint: Path, state: dict, settings: ReportSettings) -> dict:
    tables = load_tables(state)
    return {
        side: map_side(
            side,
            tables[side].words(settings.min_freq),
            settings.max_words,
            settings.projection,
            settings.random_state,
            checkpoint,
            state,
            settings.checkpoint,
        )
        for side in settings.sides
    }


def _saved_analysis(run_dir: Path) -> dict | None:
    path = run_dir / ANALYSIS_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InputError("not an analysis (invalid JSON)", path) from None
    if not isinstance(saved, dict) or "checkpoint" not in saved:
        raise InputError("not an analysis written by seqembed analyze", path)
    return saved


def _analysis(run_dir: Path, checkpoint: Path) -> tuple[dict, str]:
    """The saved analysis when it describes this checkpoint; else one made
    now, with the saved analysis' settings where there is one."""
    from seqembed.analysis.run import analyze_run
    from seqembed.analysis.settings import AnalysisSettings, settings_from_dict

    saved = _saved_analysis(run_dir)
    if saved and saved.get("checkpoint") == checkpoint.name:
        return saved, f"from {ANALYSIS_FILE}, written by seqembed analyze"
    if saved:
        settings = settings_from_dict(saved.get("settings"), run_dir / ANALYSIS_FILE)
        log.info("%s describes %s: analysing %s", ANALYSIS_FILE, saved["checkpoint"],
                 checkpoint.name)  # fmt: skip
        return analyze_run(checkpoint, settings), (
            f"made now for {checkpoint.name} with the settings of {ANALYSIS_FILE} "
            f"(which describes {saved['checkpoint']})"
        )
    log.info("no saved analysis of %s: analysing with default settings", checkpoint)
    return analyze_run(checkpoint, AnalysisSettings()), (
        f"made now with the default settings (no {ANALYSIS_FILE})"
    )


def _sections(analysis: dict, run_dir: Path, analysis_from: str | None) -> list:
    try:
        return sections(analysis)
    except (KeyError, TypeError):
        if not analysis_from or not analysis_from.startswith("from "):
            raise
        raise InputError(
            "lacks figures this seqembed reports (written by an older version?); "
            "run `seqembed analyze` on the run again",
            run_dir / ANALYSIS_FILE,
        ) from None


def _samples(translator, splits: dict, test_outputs: list[str], n: int) -> list:
    """Held-out test pairs first; training pairs when there are too few."""
    rows = [
        ["test", p.src, out, p.tgt]
        for p, out in list(zip(splits["test"], test_outputs))[:n]
    ]
    train = splits["train"][: n - len(rows)]
    outputs = translator.translate([p.src for p in train])
    rows += [["training", p.src, out, p.tgt] for p, out in zip(train, outputs)]
    return rows


def _attention_figures(translator: Translator, sources: list[str]) -> list[dict]:
    """An attention heatmap (plotly, plain data) per sample sentence, for
    models with attention."""
    if translator.model.decoder.attention is None:
        return []
    return [attention_figure(translator.attention(text)) for text in sources]


def attention_figure(attention) -> dict:
    """Output tokens (rows) against source tokens (columns). The axes are
    numbered and labelled with ticktext: a categorical axis would merge a
    token that occurs twice."""
    src = [_plotly_text(t) for t in attention.src_tokens]
    tgt = [_plotly_text(t) for t in attention.tgt_tokens]
    weights = attention.weights.tolist()
    hover = [
        [f"{t} ← {s}: {w:.3f}" for s, w in zip(src, row)]
        for t, row in zip(tgt, weights)
    ]
    return {
        "data": [
            {
                "type": "heatmap",
                "z": [[round(w, 3) for w in row] for row in weights],
                "zmin": 0,
                "zmax": 1,
                "colorscale": [[0, "#ffffff"], [1, "#08306b"]],  # 0 is white
                "hovertext": hover,
                "hoverinfo": "text",
                "showscale": False,
            }
        ],
        "layout": {
            "height": 90 + 24 * len(tgt),
            "margin": {"l": 100, "r": 10, "t": 10, "b": 70},
            "xaxis": {
                **_token_axis(src),
                "tickangle": -45 if max(map(len, src)) > 2 else 0,
            },
            "yaxis": {**_token_axis(tgt), "autorange": "reversed"},
        },
    }


def _token_axis(tokens: list[str]) -> dict:
    return {"tickvals": list(range(len(tokens))), "ticktext": tokens}


def _plotly_text(token: str) -> str:
    """Plotly reads tags (<b>) and entities in text: "<EOS>" must arrive as
    "&lt;EOS&gt;" to be shown as itself."""
    return html.escape(token, quote=False)


def _stability(run_dir: Path) -> list[Section]:
    """``train --seeds K`` writes OUT/stability beside the runs OUT/seed-N."""
    from seqembed.analysis.stability import stability_sections

    path = run_dir.parent / "stability" / "stability.json"
    if not path.is_file():
        return []
    report = json.loads(path.read_text(encoding="utf-8"))
    if run_dir.name not in {Path(r).name for r in report["runs"]}:
        return []
    return stability_sections(report)
