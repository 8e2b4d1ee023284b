"""Command-line wiring for pictures: plot (embedding map, movement), attention.

Each command writes one file and prints its path on stdout (like ``export``);
a one-line summary goes to stderr.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from seqembed.cli.options import (
    add_checkpoint,
    add_command,
    add_device,
    add_min_freq,
    add_out_file,
    add_projection,
    add_run,
    add_seed,
    add_side,
    add_specials,
    alias,
    bounded,
    count,
)
from seqembed.cli.outputs import file_out
from seqembed.cli.terminal import note, note_checkpoint, progress
from seqembed.errors import InputError

MAP_FORMATS = ("png", "svg", "pdf", "html")
MOVEMENT_FORMATS = ("png", "svg", "pdf", "gif", "html")


def _run(args):
    """RUN's checkpoint (--checkpoint of a run directory, or the .pt file)
    as the API's ``Run``. Each command names it on stderr once its file is
    written: a mistake found on the way stays a one-line error."""
    from seqembed.api.runs import load_run

    return load_run(args.run, args.checkpoint, getattr(args, "device", None))


def _output(args, run_dir: Path, stem: str, formats: tuple[str, ...]):
    """(path, format): --format, else the --out suffix, else png; an --out
    that exists only with --force, the default in RUN/figures rewritten."""
    out = Path(args.out) if args.out else None
    format = args.format or (out.suffix.lstrip(".").lower() if out else "") or "png"
    if format not in formats:
        raise InputError(f"cannot write {format!r}; formats: {', '.join(formats)}")
    return file_out(args, run_dir / "figures" / f"{stem}.{format}"), format


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
        method=args.projection or default_method,
        perplexity=args.perplexity,
        random_state=args.seed,
        n_jobs=args.threads,
    )


# -------------------------------------------------------------------- plot


def cmd_plot(args) -> int:
    if args.movement:
        return _plot_movement(args)
    from seqembed.report.embedding_map import embedding_map
    from seqembed.report.figures import save_figure, write_text
    from seqembed.report.map_drawing import map_figure, map_html

    # plot_map's steps, kept open here: the CLI also writes HTML, which
    # plot_map (a matplotlib Figure) does not.
    run = _run(args)
    run_dir = run.path
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
    with progress(f"drawing the {projection.method} map", args.quiet):
        m = embedding_map(
            run.tables(specials=True).as_dict(),
            side=side,
            projection=projection,
            color=color,
            groups=groups,
            analysis=analysis,
            n_labels=args.labels,
            min_freq=args.min_freq,
            include_specials=args.specials,
        )
        if format == "html":
            write_text(map_html(m), path)
        else:
            save_figure(map_figure(m), path, format)
    seconds = time.perf_counter() - started
    note_checkpoint(run.checkpoint_line, args.quiet)
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
    run = _run(args)
    side = args.side or "src"
    path, format = _output(args, run.path, f"movement-{side}", MOVEMENT_FORMATS)
    table = run.tables(specials=True)[side]  # the whole vocabulary, in order
    started = time.perf_counter()
    with progress("drawing the movement over training", args.quiet):
        frames = movement_frames(
            run.path,
            {"tokens": table.tokens, "freqs": table.freqs},
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
    note_checkpoint(run.checkpoint_line, args.quiet)
    note(
        f"{len(frames.words)} words x {len(frames.epochs)} snapshots, "
        f"{frames.method}; {seconds:.1f} s"
    )
    print(path)
    return 0


# --------------------------------------------------------------- attention


def cmd_attention(args) -> int:
    from seqembed.report.figures import save_figure
    from seqembed.report.heatmap import attention_figure

    run = _run(args)
    path, format = _output(args, run.path, "attention", MAP_FORMATS[:3])
    attention = run.translator.attention(args.text)
    save_figure(attention_figure(attention), path, format)
    note_checkpoint(run.checkpoint_line, args.quiet)
    note(f"{' '.join(attention.src_tokens)}  ->  {' '.join(attention.tgt_tokens[:-1])}")
    print(path)
    return 0


# ------------------------------------------------------------------ parser


def register(commands) -> None:
    """Register ``plot`` and ``attention``."""
    plot = add_command(
        commands,
        "plot",
        "embedding map (t-SNE, PCA, UMAP) or movement over training",
        "Draw a run's embeddings in 2-D, coloured by topic group, by frequency "
        "or by whether the analysis found a word's neighbours above chance; "
        "--side both maps the target table into the source space through the "
        "alignment and joins dictionary pairs. With --movement, the per-epoch "
        "snapshots as small multiples, a GIF or an HTML animation. Prints the "
        "path written on stdout.",
        "seqembed plot runs/demo --groups builtin --out map.svg\n"
        "seqembed plot runs/demo --movement --format gif",
    )
    add_run(plot, "run directory or checkpoint")
    add_checkpoint(plot)
    _add_map_options(plot)
    _add_projection_options(plot)
    plot.add_argument(
        "--format",
        choices=MOVEMENT_FORMATS,
        help="default: the --out suffix, else png (gif: --movement only)",
    )
    add_out_file(plot, "RUN/figures/embeddings-SIDE-PROJECTION.FORMAT, rewritten")
    _add_movement_options(plot)
    plot.set_defaults(func=cmd_plot)

    attention = add_command(
        commands,
        "attention",
        "attention heatmap of one translated sentence",
        "Translate one source sentence greedily and draw the attention weights "
        "of each output word over the source words (a model trained with "
        "luong or bahdanau attention). Prints the path written on stdout.",
        "seqembed attention runs/demo 我爱自然语言处理 --out attention.svg",
    )
    add_run(attention, "run directory or checkpoint")
    attention.add_argument("text", metavar="TEXT", help="a source sentence")
    add_checkpoint(attention)
    add_device(attention, what="translates")
    attention.add_argument(
        "--format",
        choices=MAP_FORMATS[:3],
        help="default: the --out suffix, else png",
    )
    add_out_file(attention, "RUN/figures/attention.png, rewritten")
    attention.set_defaults(func=cmd_attention)


def _add_map_options(plot) -> None:
    """What is on the map: the side, the colours, the labels, the words."""
    add_side(
        plot, None, " (default src); with both, the target table is mapped into "
        "the source space by the alignment and dictionary pairs are joined",
    )  # fmt: skip
    color = plot.add_argument(
        "--color",
        choices=("group", "frequency", "chance"),
        help="default: group when groups are known, else frequency",
    )
    alias(plot, color, "--colour")
    plot.add_argument(
        "--groups",
        help="topic groups: a YAML file, builtin or design "
        "(default: those of the run's analysis)",
    )
    plot.add_argument(
        "--analysis",
        metavar="FILE",
        help="analysis.json for --color chance (default RUN/analysis/analysis.json)",
    )
    plot.add_argument(
        "--labels",
        type=int,
        action=count(0),
        default=40,
        metavar="N",
        help="label every word up to N per side, else the N most frequent (default 40)",
    )
    add_min_freq(plot)
    add_specials(plot, default=True)


def _add_projection_options(plot) -> None:
    add_projection(plot, None, "how the map places words (default tsne; pca with "
                   "--movement)")  # fmt: skip
    plot.add_argument(
        "--perplexity",
        type=float,
        action=bounded(0, above=True),
        default=30.0,
        help="t-SNE perplexity, capped at (words - 1) / 3 (default %(default)s)",
    )
    add_seed(plot, "seed of the projection")
    plot.add_argument(
        "--threads",
        type=int,
        action=count(1),
        default=1,
        metavar="N",
        help="threads for t-SNE (default 1)",
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
        action=count(2),
        default=9,
        metavar="N",
        help="snapshots drawn with --movement, at least 2 (default 9)",
    )
    plot.add_argument(
        "--frames",
        type=int,
        action=count(2),
        default=60,
        metavar="N",
        help="most snapshots in a --movement GIF or HTML animation, at least 2 "
        "(default 60)",
    )
