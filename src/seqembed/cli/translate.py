"""``seqembed translate`` and ``seqembed evaluate``: a run's translator on
sentences (stdout: one translation per input line) or on a test TSV (BLEU,
chrF and the hypotheses file)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from seqembed.cli.options import add_beam, add_precision, add_run
from seqembed.cli.terminal import say


def register(commands) -> None:
    translate = commands.add_parser(
        "translate", help="translate sentences (args or stdin)"
    )
    add_run(translate)
    translate.add_argument(
        "text", nargs="*", help="sentences (default: one per stdin line)"
    )
    add_beam(translate)
    add_precision(translate)
    translate.add_argument("--batch-size", type=int, help="sentences per batch")
    translate.set_defaults(func=cmd_translate)

    evaluate = commands.add_parser("evaluate", help="BLEU and chrF on a test TSV")
    add_run(evaluate)
    evaluate.add_argument(
        "test", help="TSV, by default target TAB source (Tatoeba layout)"
    )
    add_beam(evaluate)
    add_precision(evaluate)
    evaluate.add_argument("--src-column", type=int, default=1)
    evaluate.add_argument("--tgt-column", type=int, default=0)
    evaluate.add_argument(
        "--hyp-out", help="where to write hypotheses (default TEST.hyp)"
    )
    evaluate.add_argument("--json", action="store_true", help="print scores as JSON")
    evaluate.set_defaults(func=cmd_evaluate)


def _read_inputs(texts: list[str]) -> list[str]:
    if texts:
        return texts
    from seqembed.textfile import decode_lines

    # Bytes, decoded here: a GBK or UTF-16 pipe is a one-line error, not a
    # UnicodeDecodeError from the locale's codec.
    return [text for _, text in decode_lines(sys.stdin.buffer, "<stdin>")]


def _load_translator(args):
    from seqembed.nmt.evaluation import Translator

    settings = {"precision": args.precision} if args.precision else {}
    return Translator.from_checkpoint(args.run, **settings)


def cmd_translate(args) -> int:
    translator = _load_translator(args)
    lines = _read_inputs(args.text)
    outputs = translator.translate(
        lines, beam_size=args.beam, batch_size=args.batch_size
    )
    sys.stdout.write("".join(out + "\n" for out in outputs))
    return 0


def cmd_evaluate(args) -> int:
    from seqembed.data.corpus import SkipCounts, read_tsv
    from seqembed.nmt.evaluation import score

    translator = _load_translator(args)
    pairs = read_tsv(
        Path(args.test), args.src_column, args.tgt_column, 10**9, SkipCounts()
    )
    started = time.perf_counter()
    hypotheses = translator.translate([p.src for p in pairs], beam_size=args.beam)
    seconds = time.perf_counter() - started
    scores = score(hypotheses, [p.tgt for p in pairs], translator.config.data.lowercase)
    hyp_path = (
        Path(args.hyp_out) if args.hyp_out else Path(args.test).with_suffix(".hyp")
    )
    hyp_path.write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    if args.json:
        print(
            json.dumps(
                {
                    **scores.as_dict(),
                    "hypotheses": str(hyp_path),
                    "beam_size": args.beam or translator.config.decode.beam_size,
                    "decode_seconds": round(seconds, 3),
                },
                indent=2,
            )
        )
    else:
        print(f"BLEU {scores.bleu:.2f}  {scores.bleu_signature}")
        print(f"chrF {scores.chrf:.2f}  {scores.chrf_signature}")
        say(f"{scores.n_sentences} sentences in {seconds:.1f}s; hypotheses: {hyp_path}")
    return 0
