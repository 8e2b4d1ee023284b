"""``seqembed report RUN``: one self-contained HTML report of a run."""

from __future__ import annotations

from pathlib import Path

from seqembed.cli.options import (
    SIDES,
    add_checkpoint,
    add_command,
    add_device,
    add_min_freq,
    add_out_file,
    add_projection,
    add_run,
    add_seed,
    add_side,
    count,
)
from seqembed.cli.outputs import file_out
from seqembed.cli.terminal import progress, say
from seqembed.errors import InputError


def register(commands) -> None:
    report = add_command(
        commands,
        "report",
        "one self-contained HTML report of a run (works offline)",
        "Write one HTML file about a run: its summary and config, the training "
        "curves, test BLEU and chrF, sample translations with their attention, "
        "an embedding map to hover and search, and the analysis (the saved "
        "RUN/analysis, else one with default settings). Fonts and scripts are "
        "inlined, so it opens offline. Its header names the checkpoint shown.",
        "seqembed report runs/demo --projection pca --out demo.html",
    )
    add_run(report)
    add_checkpoint(report)
    add_device(report, what="translates the sample sentences")
    add_out_file(report, "RUN/report.html, rewritten")
    add_side(report, "both", "; both: the two with a switch on the page")
    add_min_freq(report)
    report.add_argument(
        "--max-words",
        type=int,
        action=count(1),
        default=3000,
        metavar="N",
        help="words on the map per side, most frequent first (default 3000)",
    )
    add_projection(report, "tsne", "how the map places words (default tsne)")
    report.add_argument(
        "--samples",
        type=int,
        action=count(0),
        default=8,
        metavar="N",
        help="sample translations (default 8)",
    )
    add_seed(report, "seed of the projection")
    report.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from seqembed.report.build import ReportSettings, write_report

    run = Path(args.run)
    if not run.exists():
        raise InputError("no such run directory or checkpoint", run)
    settings = ReportSettings(
        sides=SIDES[args.side],
        max_words=args.max_words,
        min_freq=args.min_freq,
        projection=args.projection,
        n_samples=args.samples,
        random_state=args.seed,
        checkpoint=args.checkpoint,
        device=args.device or "auto",
    )
    out = file_out(args, None)
    with progress(f"writing the report of {run}", args.quiet):
        path = write_report(run, out, settings)
    size = path.stat().st_size / 1e6
    say(f"Wrote {path} ({size:.1f} MB)")
    return 0
