"""Command-line wiring for pictures: plot (embedding map, movement), attention.

Each command writes one file and prints its path on stdout (like ``export``);
a one-line summary goes to stderr.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from seqembed.cli.options import add_run
from seqembed.cli.terminal import note
from seqembed.errors import InputError

MAP_FORMATS = ("png", "svg", "pdf", "html")
MOVEMENT_FORMATS = ("png", "svg", "pdf", "gif", "html")


def _run(run: str) -> tuple[Path, dict]:
    """The checkpoint of RUN (a run directory or a .pt file), loaded."""
    from seqembed.nmt.checkpoint import load_checkpoint, resolve_checkpoint

    checkpoint = resolve_checkpoint(Path(run))
    return checkpoint.parent, load_checkpoint(checkpoint)


def _output(args, run_dir: Path, stem: str, formats: tuple[str, ...]):
    """(path, format): --format, else the --out suffix, else png."""
    out = Path(args.out) if args.out else None
    format = args.format or (out.suffix.lstrip(".").lower() if out else "") or "png"
    if format not in formats:
        raise InputError(f"cannot write {format!r}; formats: {', '.join(formats)}")
    return out or run_dir / "figures" / f"{stem}.{format}", format


def _analysis(args, run_dir: Path) -> dict | None:
    """--analysis FILE, else RUN/analysis/analysis.json if there is one."""
    path = Path(args.analysis) if args.analysis else run_dir / "analysis/analysis.json"
    if not args.analysis and not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(error.strerror or str(error), path) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("not an analysis JSON file", path) from None
    if not isinstance(data, dict) or data.get("format") != "seqembed-analysis":
        raise InputError("not a seqembed analysis (analysis.json)", path)
    return data


def _groups(spec: str | None, analysis: dict | None) -> dict[str, list[str]]:
    """--groups FILE|builtin|design, else the analysis' groups, else none."""
    from seqembed.analysis.run import DESIGN_GROUPS, builtin_groups, read_groups

    if spec == "builtin":
        return builtin_groups()
    if spec == "design":
        return DESIGN_GROUPS
    if spec:
        return read_groups(Path(spec))
    return dict((analysis or {}).get("settings", {}).get("groups") or {})


def _projection(args, default_method: str):
    from seqembed.report.projection import Projection

    return Projection(
        method=args.method or default_method,
        perplexity=args.perplexity,
        random_state=args.random_state,
        n_jobs=args.threads,
    )


def _check(args) -> None:
    if args.threads < 1:
        raise InputError("--threads must be at least 1")
    if args.labels < 0 or args.min_freq < 0:
        raise InputError("--labels and --min-freq must not be negative")
    if args.perplexity <= 0:
        raise InputError("--perplexity must be positive")
    if args.panels < 2 or args.frames < 2:
        raise InputError("--panels and --frames must be at least 2")


# -------------------------------------------------------------------- plot


def cmd_plot(args) -> int:
    _check(args)
    if args.movement:
        return _plot_movement(args)
    from seqembed.nmt.checkpoint import load_tables
    from seqembed.report.embedding_map import embedding_map
    from seqembed.report.figures import save_figure, write_text
    from seqembed.report.map_drawing import map_figure, map_html

    run_dir, state = _run(args.run)
    side = args.side or "src"
    projection = _projection(args, "tsne")
    path, format = _output(
        args, run_dir, f"embeddings-{side}-{projection.method}", MAP_FORMATS
    )
    analysis = _analysis(args, run_dir)
    groups = _groups(args.groups, analysis)
    color = args.color or ("group" if groups else "frequency")
    if color == "group" and not groups:
        raise InputError(
            "colouring by group needs --groups FILE|builtin|design "
            "(or an analysis run with groups)"
        )
    started = time.perf_counter()
    m = embedding_map(
        load_tables(state),
        side=side,
        projection=projection,
        color=color,
        groups=groups,
        analysis=analysis,
        n_labels=args.labels,
        min_freq=args.min_freq,
        include_specials=not args.no_specials,
    )
    if format == "html":
        write_text(map_html(m), path)
    else:
        save_figure(map_figure(m), path, format)
    seconds = time.perf_counter() - started
    note(f"{len(m.words)} tokens, {m.method}, coloured by {color}; {seconds:.1f} s")
    print(path)
    return 0


def _plot_movement(args) -> int:
    from seqembed.report.figures import save_figure, standalone_html, write_text
    from seqembed.report.movement_plot import (
        movement_figure,
        movement_frames,
        movement_plotly,
        write_gif,
    )

    if args.side == "both":
        raise InputError("--movement draws one side: --side src or tgt")
    run_dir, state = _run(args.run)
    side = args.side or "src"
    path, format = _output(args, run_dir, f"movement-{side}", MOVEMENT_FORMATS)
    started = time.perf_counter()
    frames = movement_frames(
        run_dir,
        state[f"{side}_vocab"],
        side=side,
        projection=_projection(args, "pca"),
        min_freq=args.min_freq,
    )
    if format == "gif":
        write_gif(frames, path, args.frames)
    elif format == "html":
        write_text(standalone_html(movement_plotly(frames, args.frames)), path)
    else:
        save_figure(movement_figure(frames, args.panels), path, format)
    seconds = time.perf_counter() - started
    note(
        f"{len(frames.words)} words x {len(frames.epochs)} snapshots, "
        f"{frames.method}; {seconds:.1f} s"
    )
    print(path)
    return 0


# --------------------------------------------------------------- attention


def cmd_attention(args) -> int:
    from seqembed.nmt.checkpoint import resolve_checkpoint
    from seqembed.nmt.evaluation import Translator
    from seqembed.report.figures import save_figure
    from seqembed.report.heatmap import attention_figure

    checkpoint = resolve_checkpoint(Path(args.run))
    path, format = _output(args, checkpoint.parent, "attention", MAP_FORMATS[:3])
    attention = Translator.from_checkpoint(checkpoint).attention(args.text)
    save_figure(attention_figure(attention), path, format)
    note(f"{' '.join(attention.src_tokens)}  ->  {' '.join(attention.tgt_tokens[:-1])}")
    print(path)
    return 0


# ------------------------------------------------------------------ parser


def register(commands) -> None:
    """Register ``plot`` and ``attention``."""
    plot = commands.add_parser(
        "plot", help="embedding map (t-SNE, PCA, UMAP) or movement over training"
    )
    add_run(plot, "run directory or checkpoint")
    _add_map_options(plot)
    _add_projection_options(plot)
    plot.add_argument(
        "--format",
        choices=MOVEMENT_FORMATS,
        help="default: the --out suffix, else png (gif: --movement only)",
    )
    plot.add_argument("--out", help="file (default RUN/figures/...)")
    _add_movement_options(plot)
    plot.set_defaults(func=cmd_plot)

    attention = commands.add_parser(
        "attention", help="attention heatmap of one translated sentence"
    )
    add_run(attention, "run directory or checkpoint")
    attention.add_argument("text", metavar="TEXT", help="a source sentence")
    attention.add_argument("--format", choices=MAP_FORMATS[:3])
    attention.add_argument("--out", help="file (default RUN/figures/attention.png)")
    attention.set_defaults(func=cmd_attention)


def _add_map_options(plot) -> None:
    """What is on the map: the side, the colours, the labels, the words."""
    plot.add_argument(
        "--side",
        choices=("src", "tgt", "both"),
        help="default src; both: target mapped into the source "
        "space by the alignment, dictionary pairs joined",
    )
    plot.add_argument(
        "--color",
        choices=("group", "frequency", "chance"),
        help="default: group when groups are known, else frequency",
    )
    plot.add_argument(
        "--groups",
        help="topic groups: a YAML file, builtin or design "
        "(default: those of the run's analysis)",
    )
    plot.add_argument(
        "--analysis",
        help="analysis.json for --color chance (default RUN/analysis/analysis.json)",
    )
    plot.add_argument(
        "--labels",
        type=int,
        default=40,
        metavar="N",
        help="label every word up to N per side, else the N most frequent (default 40)",
    )
    plot.add_argument("--min-freq", type=int, default=1, metavar="N")
    plot.add_argument(
        "--no-specials", action="store_true", help="leave out <SOS>, <EOS>, <UNK>"
    )


def _add_projection_options(plot) -> None:
    plot.add_argument(
        "--method",
        choices=("tsne", "pca", "umap"),
        help="default tsne (pca with --movement)",
    )
    plot.add_argument(
        "--perplexity",
        type=float,
        default=30.0,
        help="t-SNE perplexity, capped at (words - 1) / 3",
    )
    plot.add_argument("--random-state", type=int, default=0)
    plot.add_argument(
        "--threads", type=int, default=1, help="threads for t-SNE (default 1)"
    )


def _add_movement_options(plot) -> None:
    plot.add_argument(
        "--movement",
        action="store_true",
        help="the per-epoch snapshots: small multiples and the mean movement per epoch",
    )
    plot.add_argument(
        "--panels",
        type=int,
        default=9,
        help="snapshots drawn with --movement (default 9)",
    )
    plot.add_argument(
        "--frames",
        type=int,
        default=60,
        help="most snapshots in a --movement GIF or HTML animation (default 60)",
    )
