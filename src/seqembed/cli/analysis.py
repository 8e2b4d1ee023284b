"""``seqembed analyze`` (every analysis of a run, each figure beside its
chance level) and ``seqembed neighbours`` (a word's nearest words).

Tables go to stderr through rich; the files (analysis.json, analysis.md) are
the results. The flags' defaults are ``AnalysisSettings``' own.
"""

from __future__ import annotations

import json
from pathlib import Path

from seqembed.analysis.settings import AnalysisSettings
from seqembed.cli.options import (
    SIDES,
    add_checkpoint,
    add_command,
    add_device,
    add_force,
    add_min_freq,
    add_out_dir,
    add_run,
    add_seed,
    add_side,
    add_specials,
    bounded,
    count,
)
from seqembed.cli.outputs import folder_out, refuse_existing
from seqembed.cli.terminal import console, note_checkpoint, print_sections, progress
from seqembed.errors import InputError

DEFAULTS = AnalysisSettings()


def register(commands) -> None:
    analyze = add_command(
        commands,
        "analyze",
        "embedding analysis with chance baselines",
        "Analyse a run's word embeddings: the most similar pairs, topic groups, "
        "chosen pairs, outliers, co-occurrence, cross-lingual alignment, the "
        "LSTM's contextual states and the movement from the initial vectors; "
        "every figure beside its chance level and permutation test, corrected "
        "for multiple tests. Writes analysis.json and analysis.md; tables go "
        "to stderr. With --stability, compares runs trained with other seeds.",
        "seqembed analyze runs/demo --groups builtin --pairs 天气-下雨 --top 10\n"
        "seqembed analyze runs/s/seed-1 runs/s/seed-2 --stability",
        aliases=("analyse",),
    )
    analyze.add_argument("runs", nargs="+", metavar="RUN", help="run directory")
    add_checkpoint(analyze)
    add_device(analyze, what="computes the contextual states")
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
    add_out_dir(
        analyze,
        "the folder for analysis.json and analysis.md (default RUN/analysis, "
        "rewritten; RUN/stability with --stability)",
    )
    add_force(analyze)
    analyze.set_defaults(func=cmd_analyze)
    _register_neighbours(commands)


def _register_neighbours(commands) -> None:
    neighbours = add_command(
        commands,
        "neighbours",
        "nearest neighbours of words",
        "List the words whose embeddings are closest (cosine) to each WORD, "
        "each beside the cosine a random table of the same size and width "
        "would give at that rank. A word is looked up in the source table, "
        "then the target one, unless --side says which.",
        "seqembed neighbours runs/demo 天气 weather -k 5",
        aliases=("neighbors",),
    )
    add_run(neighbours)
    neighbours.add_argument(
        "words", nargs="+", metavar="WORD", help="words to list neighbours of"
    )
    add_checkpoint(neighbours)
    add_device(neighbours, what="is loaded")
    neighbours.add_argument(
        "-k",
        type=int,
        action=count(1),
        default=10,
        help="neighbours per word (default %(default)s)",
    )
    add_side(neighbours, "both")
    add_min_freq(neighbours)
    add_specials(neighbours, default=False)
    neighbours.add_argument("--json", action="store_true", help="JSON lines")
    neighbours.set_defaults(func=cmd_neighbours)


def _add_word_options(analyze) -> None:
    """Which words: the side, the frequency floor, word lists, groups, pairs."""
    add_side(analyze, None, " (default both; src with --seed-example)")
    add_min_freq(analyze, DEFAULTS.min_freq)
    analyze.add_argument(
        "--words", nargs="+", metavar="WORD", help="analyse only these words"
    )
    analyze.add_argument("--word-file", metavar="FILE", help="file of words to analyse")
    analyze.add_argument(
        "--groups", help="topic groups: a YAML file (name: [words]), builtin or design"
    )
    analyze.add_argument("--pairs", nargs="+", metavar="A-B", help="word pairs to list")
    analyze.add_argument(
        "--top",
        type=int,
        action=count(1),
        metavar="N",
        help=f"most similar pairs listed (default {DEFAULTS.top_n}; 8 with "
        "--seed-example)",
    )
    add_specials(analyze, DEFAULTS.include_specials)
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
        "--k-std",
        type=float,
        action=bounded(0, above=True),
        default=DEFAULTS.k_std,
        metavar="K",
        help="norm outlier rule: a vector length more than K standard deviations "
        "from the mean (default %(default)s)",
    )
    analyze.add_argument(
        "--mad",
        type=float,
        action=bounded(0, above=True),
        default=DEFAULTS.mad_threshold,
        metavar="M",
        help="norm outlier rule: a length's modified z-score (median absolute "
        "deviation) above M (default %(default)s)",
    )
    analyze.add_argument(
        "--permutations",
        type=int,
        action=count(1000),
        default=DEFAULTS.n_permutations,
        metavar="N",
        help="permutations per test, at least 1000 (default %(default)s)",
    )
    analyze.add_argument(
        "--alpha",
        type=float,
        action=bounded(0, 1, above=True, below=True),
        default=DEFAULTS.alpha,
        help="the tests' level after --correction, between 0 and 1 (default "
        "%(default)s)",
    )
    analyze.add_argument(
        "--correction",
        choices=("holm", "bh"),
        default=DEFAULTS.correction,
        help="for multiple tests: holm (family-wise) or bh (false discovery "
        "rate) (default %(default)s)",
    )
    analyze.add_argument(
        "--shaped-repeats",
        type=int,
        action=count(0),
        default=DEFAULTS.shaped_null_repeats,
        metavar="R",
        help="random tables with the embeddings' mean and covariance for the top "
        f"pairs' null (default {DEFAULTS.shaped_null_repeats}: level 0.05; each "
        "costs a pass over all pairs; 0 skips it)",
    )
    add_seed(analyze, "seed of the permutations and random tables")


def _add_part_options(analyze) -> None:
    """The analyses beside the table's own: alignment, LSTM states, movement."""
    analyze.add_argument(
        "--context-words",
        nargs="+",
        metavar="WORD",
        help="words whose LSTM states are compared across sentences "
        "(default: frequent words)",
    )
    for part, what in (
        ("alignment", "the cross-lingual alignment of the two tables"),
        ("contextual", "the LSTM's contextual states"),
        ("movement", "the movement from the initial vectors over training"),
    ):
        analyze.add_argument(f"--no-{part}", action="store_true", help=f"skip {what}")


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
        include_specials=args.specials,
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
        random_state=args.seed,
        aggregate_words=args.aggregate_words,
        checkpoint=args.checkpoint,
        device=args.device or "auto",
    )


def cmd_analyze(args) -> int:
    from seqembed.analysis.run import write_analysis
    from seqembed.analysis.text import sections
    from seqembed.api.analysis import analyze

    if len(args.runs) > 1 and not args.stability:
        raise InputError("several runs need --stability")
    if args.stability and args.aggregate_words:
        raise InputError("--aggregate-words does not work with --stability yet")
    settings = settings_from_args(args)
    out = _analysis_folder(args)
    results = []
    for run in args.runs:
        with progress(str(run), args.quiet) as step:
            told = analyze(
                Path(run), settings=settings, progress=lambda p: step(p.message)
            )
            results.append(told.data)
    terminal = console()
    for result in results:  # which model each table below comes from
        terminal.print(f"checkpoint: {result['checkpoint_line']}", markup=False)
    if args.stability:
        from seqembed.analysis.stability import (
            stability_report,
            stability_sections,
            write_stability,
        )

        report = stability_report([Path(r) for r in args.runs], results, settings)
        json_path, markdown_path = write_stability(
            report, out or Path(args.runs[0]) / "stability"
        )
        print_sections(stability_sections(report), terminal)
    else:
        out = out or Path(results[0]["run"]) / "analysis"
        json_path, markdown_path = write_analysis(results[0], out)
        print_sections(sections(results[0], verbose=not args.brief), terminal)
    terminal.print(f"\nWrote {json_path} and {markdown_path}")
    return 0


def _analysis_folder(args) -> Path | None:
    """--out-dir, checked before the analysis runs; None: the default."""
    if args.stability and len(args.runs) < 2:
        raise InputError("--stability needs two or more runs")
    if not args.out_dir:
        return None
    out = folder_out(Path(args.out_dir))
    stem = "stability" if args.stability else "analysis"
    refuse_existing([out / f"{stem}.json", out / f"{stem}.md"], args.force)
    return out


# ------------------------------------------------------------- neighbours


def cmd_neighbours(args) -> int:
    from seqembed.analysis.trust import describe
    from seqembed.api.runs import load_run

    run = load_run(args.run, args.checkpoint, args.device)
    tables = run.tables(specials=True)
    # Every word first: a mistake about one is a one-line error, before any
    # output.
    records = [_neighbour_record(run, tables, word, args) for word in args.words]
    note_checkpoint(run.checkpoint_line, args.quiet)
    for record, freq in records:
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
            continue
        stability = record["stability"]
        print(
            f"{record['word']} ({record['side']}, frequency {freq}; "
            f"{describe(stability, stability)}):"
        )
        for rank, item in enumerate(record["neighbours"], 1):
            print(f"  {rank:2d}. {item['word']}\t{item['cosine']:.4f}\t"
                  f"(chance {item['chance_cosine']:.4f})")  # fmt: skip
    return 0


def _neighbour_record(run, tables, word: str, args) -> tuple[dict, int]:
    """(the --json record of ``word``, its training frequency)."""
    from seqembed.analysis.trust import NeighbourStability

    sides = SIDES[args.side]
    side = next((s for s in sides if word in tables[s]), None)
    if side is None:
        raise InputError(f"{word!r} is not in the {' or '.join(sides)} vocabulary")
    table = tables[side].words(min_freq=args.min_freq, include_specials=args.specials)
    if word not in table:
        table = tables[side].words(
            min_freq=args.min_freq,
            include_specials=args.specials,
            only=[word, *[t for t in table.tokens if t != word]],
        )
    neighbours = table.most_similar(word, topn=args.k, chance=True)
    trust = NeighbourStability(k=args.k, checkpoint=args.checkpoint)
    trust.fit(run.checkpoint, side, table, [word])
    listing = [{"word": w, "cosine": c, "chance_cosine": r} for w, c, r in neighbours]
    record = {"word": word, "side": side, "neighbours": listing}
    record["stability"] = {**trust.word_stability()[0], **trust.summary()}
    record["checkpoint"] = str(run.checkpoint)
    return record, int(table.freqs[table.index[word]])
