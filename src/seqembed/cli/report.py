"""Command-line wiring for the HTML report: ``seqembed report RUN``."""

from __future__ import annotations

from pathlib import Path

from seqembed.cli.options import SIDES, add_run
from seqembed.cli.terminal import say
from seqembed.errors import InputError


def register(commands) -> None:
    """Register the report command."""
    from seqembed.report.projection import METHODS

    report = commands.add_parser(
        "report", help="one self-contained HTML report of a run (works offline)"
    )
    add_run(report)
    report.add_argument("--out", help="HTML file to write (default RUN/report.html)")
    report.add_argument(
        "--side",
        choices=sorted(SIDES),
        default="both",
        help="embeddings on the map: source, target or both with a switch "
        "(default both)",
    )
    report.add_argument(
        "--max-words",
        type=int,
        default=3000,
        metavar="N",
        help="words on the map per side, most frequent first (default 3000)",
    )
    report.add_argument(
        "--projection",
        choices=METHODS,
        default="tsne",
        help="how the map places words (default tsne)",
    )
    report.add_argument(
        "--samples", type=int, default=8, help="sample translations (default 8)"
    )
    report.add_argument(
        "--random-state", type=int, default=0, help="seed of the projection"
    )
    report.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from seqembed.report.build import ReportSettings, write_report

    if args.max_words < 1:
        raise InputError("--max-words must be at least 1")
    if args.samples < 0:
        raise InputError("--samples must be 0 or more")
    run = Path(args.run)
    if not run.exists():
        raise InputError("no such run directory or checkpoint", run)
    settings = ReportSettings(
        sides=SIDES[args.side],
        max_words=args.max_words,
        projection=args.projection,
        n_samples=args.samples,
        random_state=args.random_state,
    )
    path = write_report(run, Path(args.out) if args.out else None, settings)
    size = path.stat().st_size / 1e6
    say(f"Wrote {path} ({size:.1f} MB)")
    return 0
