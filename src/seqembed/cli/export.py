"""``seqembed export``: a run's embeddings as word2vec text or as TensorBoard
projector files; stdout: the paths written."""

from __future__ import annotations

from pathlib import Path

from seqembed.cli.options import add_run
from seqembed.cli.terminal import note
from seqembed.errors import InputError


def register(commands) -> None:
    export = commands.add_parser("export", help="word2vec or projector files")
    add_run(export)
    export.add_argument("--format", choices=("word2vec", "projector"), required=True)
    export.add_argument("--side", choices=("src", "tgt", "out", "both"), default="src")
    export.add_argument("--out", required=True, help="file (word2vec) or folder")
    export.add_argument("--min-freq", type=int, default=1)
    export.add_argument("--include-specials", action="store_true")
    export.add_argument(
        "--initial", action="store_true", help="the untrained vectors instead"
    )
    export.set_defaults(func=cmd_export)


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
    note(f"exported {sum(len(t) for t in chosen.values()):,} vectors")
    return 0
