"""``seqembed analyze`` (every analysis of a run, each figure beside its
chance level) and ``seqembed neighbours`` (a word's nearest words).

Tables go to stderr through rich; the files (analysis.json, analysis.md) are
the results. The flags' defaults are ``AnalysisSettings``' own.
"""

from __future__ import annotations

import json
from pathlib import Path

from seqembed.analysis.settings import AnalysisSettings
from seqembed.cli.options import SIDES, add_run
from seqembed.cli.terminal import console, print_sections
from seqembed.errors import InputError

DEFAULTS = AnalysisSettings()


def register(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="embedding analysis with chance baselines"
    )
    analyze.add_argument("runs", nargs="+", metavar="RUN", help="run directory")
    _add_word_options(analyze)
    _add_test_options(analyze)
    _add_part_options(analyze)
    analyze.add_argument(
        "--seed-example",
        action="store_true",
        help="the design document's groups, pairs and top 8 (source side)",
    )
    analyze.add_argument(
        "--stability", action="store_true", help="compare runs trained with other seeds"
    )
    analyze.add_argument("--brief", action="store_true", help="fewer table rows")
    analyze.add_argument("--out", help="output folder (default RUN/analysis)")
    analyze.set_defaults(func=cmd_analyze)

    neighbours = commands.add_parser("neighbours", help="nearest neighbours of words")
    add_run(neighbours)
    neighbours.add_argument("words", nargs="+", metavar="WORD")
    neighbours.add_argument("-k", type=int, default=10)
    neighbours.add_argument("--side", choices=("src", "tgt"))
    neighbours.add_argument("--min-freq", type=int, default=1)
    neighbours.add_argument("--include-specials", action="store_true")
    neighbours.add_argument("--json", action="store_true", help="JSON lines")
    neighbours.set_defaults(func=cmd_neighbours)


def _add_word_options(analyze) -> None:
    """Which words: the side, the frequency floor, word lists, groups, pairs."""
    analyze.add_argument("--side", choices=SIDES, help="default both")
    analyze.add_argument(
        "--min-freq",
        type=int,
        default=DEFAULTS.min_freq,
        help=f"words seen this often (default {DEFAULTS.min_freq})",
    )
    analyze.add_argument("--words", nargs="+", help="analyse only these words")
    analyze.add_argument("--word-file", help="file of words to analyse")
    analyze.add_argument(
        "--groups", help="topic groups: a YAML file (name: [words]), builtin or design"
    )
    analyze.add_argument("--pairs", nargs="+", metavar="A-B", help="word pairs to list")
    analyze.add_argument(
        "--top", type=int, help=f"most similar pairs (default {DEFAULTS.top_n})"
    )
    analyze.add_argument(
        "--include-specials", action="store_true", default=DEFAULTS.include_specials
    )
    analyze.add_argument(
        "--aggregate-words",
        action="store_true",
        default=DEFAULTS.aggregate_words,
        help="subword runs: analyse words (the mean of their pieces' vectors) "
        "instead of pieces",
    )


def _add_test_options(analyze) -> None:
    """The outlier rules and the statistical tests."""
    analyze.add_argument(
        "--k-std", type=float, default=DEFAULTS.k_std, help="std outlier rule"
    )
    analyze.add_argument(
        "--mad", type=float, default=DEFAULTS.mad_threshold, help="MAD outlier rule"
    )
    analyze.add_argument("--permutations", type=int, default=DEFAULTS.n_permutations)
    analyze.add_argument("--alpha", type=float, default=DEFAULTS.alpha)
    analyze.add_argument(
        "--correction", choices=("holm", "bh"), default=DEFAULTS.correction
    )
    analyze.add_argument(
        "--shaped-repeats",
        type=int,
        default=DEFAULTS.shaped_null_repeats,
        metavar="R",
        help="random tables with the embeddings' mean and covariance for the top "
        f"pairs' null (default {DEFAULTS.shaped_null_repeats}: level 0.05; each "
        "costs a pass over all pairs; 0 skips it)",
    )
    analyze.add_argument("--random-state", type=int, default=DEFAULTS.random_state)


def _add_part_options(analyze) -> None:
    """The analyses beside the table's own: alignment, LSTM states, movement."""
    analyze.add_argument("--context-words", nargs="+", help="words for LSTM states")
    analyze.add_argument("--no-alignment", action="store_true")
    analyze.add_argument("--no-contextual", action="store_true")
    analyze.add_argument("--no-movement", action="store_true")


# ---------------------------------------------------------------- analyze


def settings_from_args(args) -> AnalysisSettings:
    from seqembed.analysis.run import (
        DESIGN_GROUPS,
        DESIGN_PAIRS,
        builtin_groups,
        parse_pair,
        read_groups,
    )
    from seqembed.vectors.table import read_word_list

    words = list(args.words or [])
    if args.word_file:
        words += read_word_list(Path(args.word_file))
    groups = {}
    if args.groups == "builtin":
        groups = builtin_groups()
    elif args.groups == "design":
        groups = DESIGN_GROUPS
    elif args.groups:
        groups = read_groups(Path(args.groups))
    pairs = [parse_pair(text) for text in args.pairs or []]
    top_n = args.top
    if args.seed_example:
        groups = groups or DESIGN_GROUPS
        pairs = pairs or DESIGN_PAIRS
        top_n = 8 if args.top is None else args.top
    return AnalysisSettings(
        sides=SIDES[args.side or ("src" if args.seed_example else "both")],
        min_freq=args.min_freq,
        words=tuple(words) or None,
        include_specials=args.include_specials,
        groups=groups,
        pairs=tuple(pairs),
        top_n=DEFAULTS.top_n if top_n is None else top_n,
        k_std=args.k_std,
        mad_threshold=args.mad,
        n_permutations=args.permutations,
        alpha=args.alpha,
        correction=args.correction,
        shaped_null_repeats=args.shaped_repeats,
        alignment=not args.no_alignment,
        contextual=not args.no_contextual,
        context_words=tuple(args.context_words) if args.context_words else None,
        movement=not args.no_movement,
        random_state=args.random_state,
        aggregate_words=args.aggregate_words,
    )


def cmd_analyze(args) -> int:
    from seqembed.analysis.run import analyze_run, write_analysis
    from seqembed.analysis.text import sections

    if args.permutations < 1000:
        raise InputError("--permutations must be at least 1000")
    if args.shaped_repeats < 0:
        raise InputError("--shaped-repeats must be 0 or more")
    if len(args.runs) > 1 and not args.stability:
        raise InputError("several runs need --stability")
    if args.stability and args.aggregate_words:
        raise InputError("--aggregate-words does not work with --stability yet")
    settings = settings_from_args(args)
    terminal = console()
    results = []
    for run in args.runs:
        with terminal.status(f"analysing {run} ..."):
            results.append(analyze_run(Path(run), settings))
    if args.stability:
        from seqembed.analysis.stability import (
            stability_report,
            stability_sections,
            write_stability,
        )

        if len(results) < 2:
            raise InputError("--stability needs two or more runs")
        report = stability_report([Path(r) for r in args.runs], results, settings)
        out = Path(args.out or Path(args.runs[0]) / "stability")
        json_path, markdown_path = write_stability(report, out)
        print_sections(stability_sections(report), terminal)
    else:
        out = Path(args.out or Path(results[0]["run"]) / "analysis")
        json_path, markdown_path = write_analysis(results[0], out)
        print_sections(sections(results[0], verbose=not args.brief), terminal)
    terminal.print(f"\nWrote {json_path} and {markdown_path}")
    return 0


# ------------------------------------------------------------- neighbours


def cmd_neighbours(args) -> int:
    from seqembed.analysis.chance import expected_top_scores
    from seqembed.nmt.checkpoint import load_checkpoint, load_tables

    tables = load_tables(load_checkpoint(Path(args.run)))
    for word in args.words:
        sides = SIDES[args.side] if args.side else ("src", "tgt")
        side = next((s for s in sides if word in tables[s]), None)
        if side is None:
            raise InputError(f"{word!r} is not in the {' or '.join(sides)} vocabulary")
        table = tables[side].words(
            min_freq=args.min_freq, include_specials=args.include_specials
        )
        if word not in table:
            table = tables[side].words(
                min_freq=args.min_freq,
                include_specials=args.include_specials,
                only=[word, *[t for t in table.tokens if t != word]],
            )
        neighbours = table.most_similar(word, args.k)
        chance = expected_top_scores(len(neighbours), len(table) - 1, table.dim)
        if args.json:
            listing = [
                {"word": w, "cosine": c, "chance_cosine": r}
                for (w, c), r in zip(neighbours, chance)
            ]
            record = {"word": word, "side": side, "neighbours": listing}
            print(json.dumps(record, ensure_ascii=False))
            continue
        print(f"{word} ({side}, frequency {table.freqs[table.index[word]]}):")
        for rank, ((other, score), typical) in enumerate(zip(neighbours, chance), 1):
            print(f"  {rank:2d}. {other}\t{score:.4f}\t(chance {typical:.4f})")
    return 0
