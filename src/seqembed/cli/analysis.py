"""Command-line wiring for looking inside a run: analyze, neighbours, export.

Kept apart from ``cli.py`` (training and translation) so each file stays a
page of wiring. Tables go to stderr through rich; files are the results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seqembed.errors import InputError

SIDES = {"src": ("src",), "tgt": ("tgt",), "both": ("src", "tgt")}


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, width=max(100, _columns()))


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size((120, 40)).columns


def print_sections(sections, console=None) -> None:
    from rich.table import Table

    console = console or _console()
    for section in sections:
        console.print(f"\n[bold]{section.title}[/bold]")
        if section.text:
            console.print(section.text)
        if section.columns:
            table = Table(show_edge=False, pad_edge=False, box=None)
            for column in section.columns:
                table.add_column(column, overflow="fold")
            for row in section.rows:
                table.add_row(*[str(cell) for cell in row])
            console.print(table)


# ---------------------------------------------------------------- analyze


def settings_from_args(args):
    from seqembed.analysis.run import (
        DESIGN_GROUPS,
        DESIGN_PAIRS,
        AnalysisSettings,
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
        top_n=20 if top_n is None else top_n,
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
    console = _console()
    results = []
    for run in args.runs:
        with console.status(f"analysing {run} ..."):
            results.append(analyze_run(Path(run), settings))
    if args.stability:
        from seqembed.analysis.stability import stability_report, write_stability

        if len(results) < 2:
            raise InputError("--stability needs two or more runs")
        report = stability_report([Path(r) for r in args.runs], results, settings)
        out = Path(args.out or Path(args.runs[0]) / "stability")
        json_path, markdown_path = write_stability(report, out)
        from seqembed.analysis.stability import stability_sections

        print_sections(stability_sections(report), console)
    else:
        out = Path(args.out or Path(results[0]["run"]) / "analysis")
        json_path, markdown_path = write_analysis(results[0], out)
        print_sections(sections(results[0], verbose=not args.brief), console)
    console.print(f"\nWrote {json_path} and {markdown_path}")
    return 0


# ------------------------------------------------------------- neighbours


def cmd_neighbours(args) -> int:
    from seqembed.analysis.chance import expected_top_scores
    from seqembed.analysis.trust import NeighbourStability, describe
    from seqembed.nmt.checkpoint import load_checkpoint, load_tables

    state = load_checkpoint(Path(args.run))
    tables = load_tables(state)
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
        trust = NeighbourStability(k=args.k).fit(Path(args.run), side, table, [word])
        stability = {**trust.word_stability()[0], **trust.summary()}
        if args.json:
            print(
                json.dumps(
                    {
                        "word": word,
                        "side": side,
                        "neighbours": [
                            {"word": w, "cosine": c, "chance_cosine": r}
                            for (w, c), r in zip(neighbours, chance)
                        ],
                        "stability": stability,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        print(
            f"{word} ({side}, frequency {table.freqs[table.index[word]]}; "
            f"{describe(stability, stability)}):"
        )
        for rank, ((other, score), typical) in enumerate(zip(neighbours, chance), 1):
            print(f"  {rank:2d}. {other}\t{score:.4f}\t(chance {typical:.4f})")
    return 0


# ----------------------------------------------------------------- export


def cmd_export(args) -> int:
    from seqembed.nmt.checkpoint import load_checkpoint, load_tables
    from seqembed.vectors.export import write_projector, write_word2vec

    state = load_checkpoint(Path(args.run))
    tables = load_tables(state, initial=args.initial)
    sides = ("src", "tgt") if args.side == "both" else (args.side,)
    chosen = {}
    for side in sides:
        if side not in tables:
            raise InputError(f"the checkpoint has no {side!r} table")
        chosen[side] = tables[side].words(args.min_freq, args.include_specials)
    out = Path(args.out)
    if args.format == "word2vec":
        if len(chosen) == 1:
            write_word2vec(next(iter(chosen.values())), out)
            written = [out]
        else:
            out.mkdir(parents=True, exist_ok=True)
            written = []
            for side, table in chosen.items():
                write_word2vec(table, out / f"{side}.vec")
                written.append(out / f"{side}.vec")
    else:
        if len(chosen) > 1 and len({t.dim for t in chosen.values()}) > 1:
            raise InputError("src and tgt tables differ in width; export one side")
        write_projector(chosen if len(chosen) > 1 else next(iter(chosen.values())), out)
        written = [out / "tensors.tsv", out / "metadata.tsv"]
    for path in written:
        print(path)
    print(
        f"seqembed: exported {sum(len(t) for t in chosen.values()):,} vectors",
        file=sys.stderr,
    )
    return 0


# ----------------------------------------------------------------- parser


def add_commands(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="embedding analysis with chance baselines"
    )
    analyze.add_argument("runs", nargs="+", metavar="RUN", help="run directory")
    analyze.add_argument("--side", choices=SIDES, help="default both")
    analyze.add_argument(
        "--min-freq", type=int, default=1, help="words seen this often (default 1)"
    )
    analyze.add_argument("--words", nargs="+", help="analyse only these words")
    analyze.add_argument("--word-file", help="file of words to analyse")
    analyze.add_argument(
        "--groups", help="topic groups: a YAML file (name: [words]), builtin or design"
    )
    analyze.add_argument("--pairs", nargs="+", metavar="A-B", help="word pairs to list")
    analyze.add_argument("--top", type=int, help="most similar pairs (default 20)")
    analyze.add_argument("--k-std", type=float, default=2.0, help="std outlier rule")
    analyze.add_argument("--mad", type=float, default=3.5, help="MAD outlier rule")
    analyze.add_argument("--permutations", type=int, default=1000)
    analyze.add_argument("--alpha", type=float, default=0.05)
    analyze.add_argument("--correction", choices=("holm", "bh"), default="holm")
    analyze.add_argument(
        "--shaped-repeats",
        type=int,
        default=19,
        metavar="R",
        help="random tables with the embeddings' mean and covariance for the top "
        "pairs' null (default 19: level 0.05; each costs a pass over all pairs; "
        "0 skips it)",
    )
    analyze.add_argument("--include-specials", action="store_true")
    analyze.add_argument("--context-words", nargs="+", help="words for LSTM states")
    analyze.add_argument("--no-alignment", action="store_true")
    analyze.add_argument("--no-contextual", action="store_true")
    analyze.add_argument("--no-movement", action="store_true")
    analyze.add_argument(
        "--aggregate-words",
        action="store_true",
        help="subword runs: analyse words (the mean of their pieces' vectors) "
        "instead of pieces",
    )
    analyze.add_argument(
        "--seed-example",
        action="store_true",
        help="the design document's groups, pairs and top 8 (source side)",
    )
    analyze.add_argument(
        "--stability", action="store_true", help="compare runs trained with other seeds"
    )
    analyze.add_argument("--random-state", type=int, default=0)
    analyze.add_argument("--brief", action="store_true", help="fewer table rows")
    analyze.add_argument("--out", help="output folder (default RUN/analysis)")
    analyze.set_defaults(func=cmd_analyze)

    neighbours = commands.add_parser("neighbours", help="nearest neighbours of words")
    neighbours.add_argument("run", metavar="RUN")
    neighbours.add_argument("words", nargs="+", metavar="WORD")
    neighbours.add_argument("-k", type=int, default=10)
    neighbours.add_argument("--side", choices=("src", "tgt"))
    neighbours.add_argument("--min-freq", type=int, default=1)
    neighbours.add_argument("--include-specials", action="store_true")
    neighbours.add_argument("--json", action="store_true", help="JSON lines")
    neighbours.set_defaults(func=cmd_neighbours)

    export = commands.add_parser("export", help="word2vec or projector files")
    export.add_argument("run", metavar="RUN")
    export.add_argument("--format", choices=("word2vec", "projector"), required=True)
    export.add_argument("--side", choices=("src", "tgt", "out", "both"), default="src")
    export.add_argument("--out", required=True, help="file (word2vec) or folder")
    export.add_argument("--min-freq", type=int, default=1)
    export.add_argument("--include-specials", action="store_true")
    export.add_argument(
        "--initial", action="store_true", help="the untrained vectors instead"
    )
    export.set_defaults(func=cmd_export)
