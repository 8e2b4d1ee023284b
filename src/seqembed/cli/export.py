"""``seqembed export``: a run's embeddings as word2vec text or as TensorBoard
projector files; stdout: the paths written.

What is written decides the flag: one word2vec table is a file (--out FILE);
two tables, or the projector's three files, go into a folder (--out-dir DIR).
"""

from __future__ import annotations

from pathlib import Path

from seqembed.cli.options import (
    SIDES,
    add_checkpoint,
    add_command,
    add_force,
    add_min_freq,
    add_run,
    add_side,
    add_specials,
)
from seqembed.cli.outputs import folder_out, refuse_existing
from seqembed.cli.terminal import note, note_checkpoint
from seqembed.errors import InputError

# Names that end like a file: `--side both --out both.vec` is a mistake, not a
# folder called both.vec.
FILE_SUFFIXES = {".vec", ".txt", ".bin", ".tsv", ".w2v", ".gz"}


def register(commands) -> None:
    export = add_command(
        commands,
        "export",
        "word2vec or projector files",
        "Write a run's embeddings for other tools: word2vec text (gensim's "
        "KeyedVectors.load_word2vec_format reads it) or the TensorBoard "
        "Embedding Projector's tensors.tsv, metadata.tsv and "
        "projector_config.pbtxt. One word2vec table is a file (--out FILE); "
        "--side both (src.vec and tgt.vec) and the projector's files go into "
        "a folder (--out-dir DIR). Existing files are kept unless --force.",
        "seqembed export runs/demo --format word2vec --out zh.vec\n"
        "seqembed export runs/demo --format projector --side both "
        "--out-dir projector/",
    )
    add_run(export)
    add_checkpoint(export)
    export.add_argument(
        "--format",
        choices=("word2vec", "projector"),
        required=True,
        help="word2vec: text vectors; projector: TensorBoard's Embedding Projector",
    )
    add_side(
        export, "src", choices=(*SIDES, "out"), extra="; out: the decoder's output "
        "layer, one row per target word",
    )  # fmt: skip
    export.add_argument("--out", metavar="FILE", help="the word2vec file of one side")
    export.add_argument(
        "--out-dir",
        metavar="DIR",
        help="the folder for --side both or --format projector",
    )
    add_force(export)
    add_min_freq(export)
    add_specials(export, default=False)
    export.add_argument(
        "--initial", action="store_true", help="the untrained vectors instead"
    )
    export.set_defaults(func=cmd_export)


def _destination(args) -> tuple[Path, list[Path]]:
    """(the path written to, the files it will hold), checked against what the
    format and side write before anything is loaded."""
    sides = SIDES.get(args.side, (args.side,))
    if args.format == "word2vec" and len(sides) == 1:
        if args.out_dir and not args.out:
            raise InputError(
                "one word2vec table is one file: give --out FILE, not --out-dir"
            )
        if not args.out:
            raise InputError("export --format word2vec needs --out FILE")
        path = Path(args.out)
        if path.is_dir():
            raise InputError(
                f"is a folder; --out names the .vec file (e.g. {path / 'src.vec'})",
                path,
            )
        return path, [path]
    what = "--side both" if args.format == "word2vec" else "--format projector"
    if args.out and args.out_dir:
        raise InputError(f"{what} writes a folder: give --out-dir only")
    if not (args.out or args.out_dir):
        raise InputError(f"{what} writes a folder: give --out-dir DIR")
    folder = Path(args.out_dir or args.out)
    flag = "--out-dir" if args.out_dir else "--out"
    folder_out(folder, flag)
    if not folder.exists() and folder.suffix.lower() in FILE_SUFFIXES:
        raise InputError(
            f"{what} writes several files into a folder, and this names a "
            "file: give --out-dir DIR",
            folder,
        )
    if args.format == "word2vec":
        return folder, [folder / f"{side}.vec" for side in sides]
    from seqembed.vectors.export import CONFIG_FILE, METADATA_FILE, TENSORS_FILE

    names = (TENSORS_FILE, METADATA_FILE, CONFIG_FILE)
    return folder, [folder / name for name in names]


def cmd_export(args) -> int:
    from seqembed.api.runs import load_run
    from seqembed.vectors.export import write_projector, write_word2vec

    out, files = _destination(args)
    refuse_existing(files, args.force)
    run = load_run(args.run, args.checkpoint)
    tables = run.tables(specials=True, initial=args.initial).as_dict()
    chosen = {}
    for side in SIDES.get(args.side, (args.side,)):
        if side not in tables:
            raise InputError(f"the checkpoint has no {side!r} table")
        chosen[side] = tables[side].words(args.min_freq, args.specials)
    if args.format == "word2vec":
        for path, table in zip(files, chosen.values()):
            write_word2vec(table, path)
        written = files
    else:
        if len(chosen) > 1 and len({t.dim for t in chosen.values()}) > 1:
            raise InputError("src and tgt tables differ in width; export one side")
        write_projector(chosen if len(chosen) > 1 else next(iter(chosen.values())), out)
        written = files[:2]
    note_checkpoint(run.checkpoint_line, args.quiet)
    for path in written:
        print(path)
    note(f"exported {sum(len(t) for t in chosen.values()):,} vectors")
    return 0
