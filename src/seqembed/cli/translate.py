"""``seqembed translate`` and ``seqembed evaluate``: a run's translator on
sentences (stdout: one translation per input line) or on a test TSV (BLEU,
chrF and the hypotheses file)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from seqembed.cli.options import (
    add_beam,
    add_checkpoint,
    add_command,
    add_device,
    add_force,
    add_precision,
    add_run,
    count,
)
from seqembed.cli.outputs import refuse_existing
from seqembed.cli.terminal import note, note_checkpoint, say


def register(commands) -> None:
    translate = add_command(
        commands,
        "translate",
        "translate sentences (args or stdin)",
        "Translate source sentences with a trained run, segmented as the run "
        "was trained. stdout has exactly one translation per input line (an "
        "empty line for an empty one), so it composes in pipelines; for each "
        "input with words the run never saw, one note on stderr names them "
        "(--quiet silences it), and on a terminal a first note names the "
        "checkpoint read.",
        "seqembed translate runs/demo 我爱自然语言处理 今天天气很好\n"
        "seqembed translate runs/demo --beam 5 < sentences.txt > english.txt",
    )
    add_run(translate)
    translate.add_argument(
        "text", nargs="*", help="sentences (default: one per stdin line)"
    )
    add_checkpoint(translate)
    add_device(translate, what="translates")
    add_beam(translate)
    add_precision(translate)
    translate.add_argument(
        "--batch-size",
        type=int,
        action=count(1),
        metavar="N",
        help="sentences per batch (default: the run's decode.batch_size)",
    )
    translate.set_defaults(func=cmd_translate)
    _register_evaluate(commands)


def _register_evaluate(commands) -> None:
    evaluate = add_command(
        commands,
        "evaluate",
        "BLEU and chrF on a test TSV",
        "Translate the source column of a TSV file and score the translations "
        "against its target column with sacreBLEU (BLEU and chrF, with their "
        "signatures). The hypotheses are written one per line; a note on "
        "stderr (a field with --json) names the checkpoint read.",
        "seqembed evaluate runs/demo runs/demo/data/test.tsv --beam 5 --json",
    )
    add_run(evaluate)
    evaluate.add_argument(
        "test", help="TSV, by default target TAB source (Tatoeba layout)"
    )
    add_checkpoint(evaluate)
    add_device(evaluate, what="translates")
    add_beam(evaluate)
    add_precision(evaluate)
    for side, default in (("src", 1), ("tgt", 0)):
        evaluate.add_argument(
            f"--{side}-column",
            type=int,
            action=count(0),
            default=default,
            metavar="I",
            help=f"0-based {side} column (default {default})",
        )
    evaluate.add_argument(
        "--hyp-out",
        metavar="FILE",
        help="where to write the hypotheses (default TEST.hyp, rewritten); a "
        "file named here that exists only with --force",
    )
    add_force(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print scores as JSON")
    evaluate.set_defaults(func=cmd_evaluate)


def _read_inputs(texts: list[str]) -> list[str]:
    if texts:
        return texts
    from seqembed.textfile import decode_lines

    # Bytes, decoded here: a GBK or UTF-16 pipe is a one-line error, not a
    # UnicodeDecodeError from the locale's codec.
    return [text for _, text in decode_lines(sys.stdin.buffer, "<stdin>")]


def _load_run(args):
    from seqembed.api.runs import load_run

    settings = {"precision": args.precision} if args.precision else {}
    return load_run(args.run, args.checkpoint, args.device, **settings)


def cmd_translate(args) -> int:
    run = _load_run(args)
    lines = _read_inputs(args.text)
    note_checkpoint(run.checkpoint_line, args.quiet, terminal_only=True)
    if not args.quiet:
        _note_unknown_words(run.translator, lines)
    outputs = run.translate(lines, beam=args.beam, batch_size=args.batch_size)
    sys.stdout.write("".join(out + "\n" for out in outputs))
    return 0


def _note_unknown_words(translator, lines: list[str]) -> None:
    """One stderr line per input with source words the run's vocabulary
    lacks: the translation of such a line may read well and still be wrong."""
    for number, text in enumerate(lines, start=1):
        unknown = [
            w for w in translator.segmenter(text) if w not in translator.src_vocab
        ]
        unique = list(dict.fromkeys(unknown))
        if unique:
            words = "word" if len(unique) == 1 else "words"
            note(f"line {number}: {len(unique)} unknown source {words}: "
                 + ", ".join(unique))  # fmt: skip


def cmd_evaluate(args) -> int:
    from seqembed.data.corpus import SkipCounts, read_tsv
    from seqembed.nmt.evaluation import score

    if args.hyp_out:
        refuse_existing([args.hyp_out], args.force)
    run = _load_run(args)
    pairs = read_tsv(
        Path(args.test), args.src_column, args.tgt_column, 10**9, SkipCounts()
    )
    started = time.perf_counter()
    hypotheses = run.translate([p.src for p in pairs], beam=args.beam)
    seconds = time.perf_counter() - started
    lowercase = run.config.data.lowercase
    scores = score(hypotheses, [p.tgt for p in pairs], lowercase, interval=True)
    hyp_path = (
        Path(args.hyp_out) if args.hyp_out else Path(args.test).with_suffix(".hyp")
    )
    hyp_path.write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    # Named once nothing can fail (a mistake stays one line), above the scores.
    note_checkpoint(run.checkpoint_line, args.quiet or args.json)
    if args.json:
        print(
            json.dumps(
                {
                    "checkpoint": str(run.checkpoint),
                    **scores.as_dict(),
                    "hypotheses": str(hyp_path),
                    "beam_size": args.beam or run.config.decode.beam_size,
                    "decode_seconds": round(seconds, 3),
                },
                indent=2,
            )
        )
    else:
        print(f"{scores.text('bleu')}  {scores.bleu_signature}")
        print(f"{scores.text('chrf')}  {scores.chrf_signature}")
        say(f"{scores.n_sentences} sentences in {seconds:.1f}s; hypotheses: {hyp_path}")
    return 0
