"""Command-line wiring: parse, build the config, call one library function.

The CLI owns the terminal: progress bars and results go to stderr, and only
``translate`` (translations) and ``data`` (a path) print to stdout, so they
compose in shell pipelines. A user's mistake is one line on stderr with exit
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from seqembed import __version__
from seqembed.errors import InputError
from seqembed.nmt.cpu.openmp import choose_wait_policy

log = logging.getLogger("seqembed")


def _err(text: str = "") -> None:
    sys.stdout.flush()  # keep stdout and stderr lines in order on one terminal
    print(text, file=sys.stderr, flush=True)


class ProgressReporter:
    """A tqdm bar per epoch (loss, target tokens/s, ETA) and a line per epoch."""

    def __init__(self):
        self.epochs = 0
        self.bar = None

    def epoch_start(self, epoch, epochs, n_batches, done):
        self.epochs = epochs
        from tqdm import tqdm

        self.bar = tqdm(
            total=n_batches,
            initial=done,
            desc=f"epoch {epoch}/{self.epochs}",
            unit="batch",
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=None if not os.environ.get("SEQEMBED_PROGRESS") else False,
        )

    def step(self, loss, tgt_tokens_per_s):
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{loss:.3f}", tok_s=f"{tgt_tokens_per_s:,.0f}", refresh=False
        )

    def epoch_end(self, m):
        self.bar.close()
        _err(
            f"epoch {m['epoch']:>3}/{self.epochs}  train loss {m['train_loss']:.4f}  "
            f"valid loss {m['valid_loss']:.4f}  BLEU {m['valid_bleu']:5.2f}  "
            f"chrF {m['valid_chrf']:5.2f}  lr {m['lr']:.2g}  "
            f"{m['tgt_tokens_per_s']:,.0f} tgt tok/s  {m['elapsed_s']:.0f}s"
        )


# ---------------------------------------------------------------- commands


@contextlib.contextmanager
def _stop_on_ctrl_c(distributed: bool = False, speak: bool = True):
    """The first Ctrl-C asks training to stop after the current batch and save;
    a second one aborts at once. Under torchrun each process gets the
    terminal's Ctrl-C and the copy torchrun passes on, so there a second one
    counts only a second after the first."""
    requested_at = None

    def handler(signum, frame):
        nonlocal requested_at
        if requested_at is not None:
            if not distributed or time.monotonic() - requested_at > 1.0:
                raise KeyboardInterrupt
            return
        requested_at = time.monotonic()
        if speak:
            _err("\nseqembed: stopping after this batch to save (Ctrl-C again aborts)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: requested_at is not None
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_train(args) -> int:
    """One process, or one of torchrun's (WORLD_SIZE set); ``--nproc N``
    starts torchrun with N processes running this same command line."""
    from seqembed.nmt import distributed

    under_torchrun = distributed.Environment.read().world_size > 1
    if args.nproc is not None and args.nproc < 1:
        raise InputError("--nproc must be at least 1")
    if args.nproc is not None and under_torchrun:
        raise InputError("--nproc starts torchrun; under torchrun leave it out")
    if args.seeds > 1 and (under_torchrun or (args.nproc or 1) > 1):
        raise InputError("--seeds trains one run after another; under torchrun "
                         "or with --nproc train one seed at a time")  # fmt: skip
    if args.nproc is not None and args.nproc > 1:
        return distributed.launch(args.nproc, _without_nproc(args.argv))
    with distributed.process_group(), distributed.rank_errors():
        if not distributed.is_main():  # rank 0 speaks for all
            logging.getLogger("seqembed").setLevel(logging.ERROR)
        return _train_command(args)


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line less ``--nproc N`` (or ``--nproc=N``, or a prefix of
    it, which argparse takes too)."""
    kept, skip_next = [], False
    for arg in argv:
        name = arg.split("=", 1)[0]
        if skip_next or (len(name) > 3 and "--nproc".startswith(name)):
            skip_next = not skip_next and "=" not in arg
            continue
        kept.append(arg)
    return kept


def _train_command(args) -> int:
    from seqembed.config import load_config
    from seqembed.data.corpus import Corpus, SkipCounts, read_tsv
    from seqembed.data.segment import read_user_dict
    from seqembed.nmt.checkpoint import kept_checkpoints
    from seqembed.textfile import check_file

    overrides = list(args.set or [])
    if args.max_minutes is not None:
        overrides.append(f"train.max_minutes={args.max_minutes}")
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    if args.src_column is not None:
        overrides.append(f"data.src_column={args.src_column}")
    if args.tgt_column is not None:
        overrides.append(f"data.tgt_column={args.tgt_column}")
    if args.pretokenized:
        overrides.append("data.src_segmentation=pretokenized")
    for side in ("src", "tgt"):  # JSON quotes: a path stays a string in YAML
        if getattr(args, f"{side}_embeddings"):
            path = getattr(args, f"{side}_embeddings")
            overrides.append(f"model.{side}_embeddings={json.dumps(path)}")
    if args.freeze_embeddings:
        overrides.append("model.freeze_embeddings=true")
    run_dir = Path(args.out)
    resume_one = args.resume and args.seeds == 1
    if resume_one and not kept_checkpoints(run_dir):
        raise InputError("nothing to resume: no last.pt in the run directory", run_dir)
    # Resuming keeps the run's own settings (its epochs too) unless given again.
    saved = run_dir / "config.yaml"
    base = load_config(saved) if resume_one and saved.is_file() else None
    config = load_config(args.config, overrides, base=base)
    pretrained_flags = args.src_embeddings or args.tgt_embeddings
    if resume_one and (pretrained_flags or args.freeze_embeddings):
        raise InputError(
            "--src/--tgt-embeddings and --freeze-embeddings start a run; "
            "a resumed run has its vectors in the checkpoint already"
        )
    if not args.resume:  # a missing file or a wrong width, before the corpus
        from seqembed.nmt.pretrained import check_files

        check_files(config.model)
    if args.seeds < 1:
        raise InputError("--seeds must be at least 1")
    pairs, user_dict, heldout = None, None, None
    # With --seeds, --resume continues the seeds that started and trains the
    # rest from the CORPUS, given again.
    if not args.resume or (args.seeds > 1 and args.corpus):
        if not args.corpus:
            raise InputError("train needs a CORPUS (or --resume)")
        if len(args.corpus) > 2:
            raise InputError("train takes one TSV file, or a source and a target file")
        if not args.resume and any(
            (run_dir / name).exists()
            for name in ("last.pt", f"seed-{config.train.seed}")
        ):
            raise InputError(
                "already holds a run; use --resume to continue it or another --out",
                run_dir,
            )
        data = config.data
        # Read as a stream when training starts (twice: to split, to write
        # the splits), never as a list: a corpus may be millions of pairs.
        pairs = Corpus(
            tuple(check_file(Path(path)) for path in args.corpus),
            data.src_column, data.tgt_column, data.max_chars,
        )  # fmt: skip
        heldout = None
        if args.valid or args.test:
            if not (args.valid and args.test):
                raise InputError("--valid and --test go together")
            heldout = {
                name: read_tsv(Path(path), data.src_column, data.tgt_column,
                               10**9, SkipCounts())
                for name, path in (("valid", args.valid), ("test", args.test))
            }  # fmt: skip
        user_dict_path = args.user_dict or config.data.user_dict
        user_dict = read_user_dict(user_dict_path) if user_dict_path else None
    if args.seeds > 1:
        return _train_seeds(args, config, run_dir, pairs, user_dict, heldout)
    return _train_one(config, run_dir, pairs, args.resume, user_dict, heldout)


def _train_one(config, run_dir, pairs, resume, user_dict, heldout) -> int:
    from seqembed.nmt import distributed
    from seqembed.nmt.training import train

    main = distributed.is_main()
    with _stop_on_ctrl_c(distributed.world_size() > 1, main) as stop_requested:
        result = train(
            config,
            run_dir,
            pairs,
            resume=resume,
            user_dict=user_dict,
            reporter=ProgressReporter(),
            heldout=heldout,
            stop_requested=stop_requested,
        )
    if result.interrupted:
        if main:
            saved = run_dir / "last.pt"
            _err(f"seqembed: interrupted; saved {saved} (--resume continues)")
        return 130
    if main:
        _err(
            f"stopped: {result.stopped_because}; best "
            f"{config.train.early_stopping_metric} {result.best_metric}; "
            f"run directory: {run_dir}"
        )
    return 0


def _train_seeds(args, config, out, pairs, user_dict, heldout) -> int:
    """``--seeds K``: the same data split, K training seeds, one run each in
    OUT/seed-N; then the stability analysis across them in OUT/stability."""
    from dataclasses import replace

    from seqembed.analysis.run import AnalysisSettings, analyze_run
    from seqembed.analysis.stability import (
        stability_report,
        stability_sections,
        write_stability,
    )
    from seqembed.cli.analysis import print_sections
    from seqembed.nmt.checkpoint import kept_checkpoints

    first = config.train.seed
    runs = [out / f"seed-{first + k}" for k in range(args.seeds)]
    for seed, run_dir in enumerate(runs, start=first):
        resume = args.resume and bool(kept_checkpoints(run_dir))
        if not resume and pairs is None:
            raise InputError(
                "has not started: give the CORPUS again to train it", run_dir
            )
        _err(f"\n== training seed {seed} -> {run_dir}")
        seeded = replace(config, train=replace(config.train, seed=seed))
        status = _train_one(seeded, run_dir, pairs, resume, user_dict, heldout)
        if status:
            return status
    settings = AnalysisSettings()
    results = [analyze_run(run, settings) for run in runs]
    report = stability_report(runs, results, settings)
    json_path, _ = write_stability(report, out / "stability")
    print_sections(stability_sections(report))
    _err(f"\nWrote {json_path}")
    return 0


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
    lowercase = translator.config.data.lowercase
    scores = score(hypotheses, [p.tgt for p in pairs], lowercase, interval=True)
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
        print(f"{scores.text('bleu')}  {scores.bleu_signature}")
        print(f"{scores.text('chrf')}  {scores.chrf_signature}")
        _err(
            f"{scores.n_sentences} sentences in {seconds:.1f}s; hypotheses: {hyp_path}"
        )
    return 0


def cmd_data(args) -> int:
    from seqembed.data.download import fetch_tatoeba

    def progress(done: int, total: int | None) -> None:
        if sys.stderr.isatty():
            size = f"/{total / 1e6:.1f}" if total else ""
            print(f"\rdownloading {done / 1e6:.1f}{size} MB", end="", file=sys.stderr)

    path = fetch_tatoeba(
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        url=args.url,
        force=args.force,
        progress=progress,
    )
    if sys.stderr.isatty():
        _err()
    print(path)
    return 0


def cmd_demo(args) -> int:
    from seqembed.cli.demo import prepare_demo_dir, run_demo

    started = time.monotonic()
    out = Path(args.out or ("runs/seed-example" if args.seed_example else "runs/demo"))
    prepare_demo_dir(out)  # fails before any output if --out holds another run
    if args.seed_example:
        _err(
            "The design document's experiment: 5 pre-segmented pairs, 64-dim "
            "embeddings, 1 LSTM layer, no attention, 50 epochs, Adam."
        )
    else:
        _err("Built-in corpus: Chinese-English pairs written for seqembed, 8 topics.")
    result = run_demo(out, args.seed_example, args.seed, ProgressReporter())
    _err("\nTranslations (greedy):")
    for source, output, reference in result.translations:
        seen = f"   [held out; reference: {reference}]" if reference else ""
        _err(f"  {source}  ->  {output}{seen}")
    if args.seed_example:
        _err(
            f"\n{result.exact}/5 translated exactly; final training loss "
            f"{result.final_loss:.4f}"
        )
    else:
        scores = result.test_scores
        _err(
            f"\nHeld-out test ({scores.n_sentences} pairs never seen in training): "
            f"BLEU {scores.bleu:.1f}, chrF {scores.chrf:.1f}. A corpus this small "
            "teaches the training sentences, not the language."
        )
    _print_demo_analysis(result.analysis, args.seed_example)
    _err(f"\nReport (open it in a browser): {result.report}")
    _err(
        f"\nRun directory: {out}  (last.pt, best.pt, config.yaml, vocab.*.tsv, "
        "metrics.jsonl, tensorboard/, embeddings/, data/, analysis/)"
    )
    _err(f"Done in {time.monotonic() - started:.0f}s.")
    return 0


# The analysis sections each demo prints (the rest is in RUN/analysis).
SEED_EXAMPLE_SECTIONS = (
    "what is above chance",
    "most similar pairs",
    "topic groups",
    "chosen pairs",
    "statistics",
    "outlier candidates",
    "movement from the initial vectors",
)
BUILTIN_SECTIONS = ("topic groups", "co-occurrence", "cross-lingual alignment")


def _print_demo_analysis(analysis: dict, seed_example: bool) -> None:
    from seqembed.analysis.text import sections
    from seqembed.cli.analysis import print_sections

    wanted = SEED_EXAMPLE_SECTIONS if seed_example else BUILTIN_SECTIONS
    chosen = [
        s
        for s in sections(analysis, verbose=False)
        if any(s.title.endswith(w) or s.title.startswith(w) for w in wanted)
    ]
    _err("\nWhat the embeddings learned, each figure beside its chance level:")
    print_sections(chosen)
    for side, data in analysis["sides"].items():
        tests = data["findings"]["tests"]
        above = sum(t["above_chance"] for t in tests)
        _err(
            f"{side}: {above} of {len(tests)} tests above chance "
            f"({data['findings']['correction']}-corrected, level "
            f"{data['findings']['alpha']})."
        )
    _err(f"Full analysis: {analysis['run']}/analysis/analysis.md")


# ---------------------------------------------------------------- parser


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line, like every other error (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="seqembed",
        description="Train LSTM encoder-decoder translators and look inside "
        "their embeddings.",
    )
    parser.add_argument(
        "--version", action="version", version=f"seqembed {__version__}"
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks on errors"
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="train on built-in data and translate")
    demo.add_argument(
        "--out", help="run directory (default runs/demo or runs/seed-example)"
    )
    demo.add_argument(
        "--seed-example",
        action="store_true",
        help="reproduce the design document's 5-pair experiment",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.set_defaults(func=cmd_demo)

    train = commands.add_parser("train", help="train a model on a parallel corpus")
    train.add_argument(
        "corpus",
        nargs="*",
        metavar="CORPUS",
        help="a TSV file, or a source file and a line-aligned target file",
    )
    train.add_argument("--out", required=True, help="run directory to create")
    train.add_argument(
        "--config", help="YAML config (sections data, vocab, model, train, decode)"
    )
    train.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable)",
    )
    train.add_argument("--max-minutes", type=float, help="wall-clock budget, e.g. 0.5")
    train.add_argument("--epochs", type=int, help="same as --set train.epochs=N")
    train.add_argument("--seed", type=int, help="same as --set train.seed=N")
    train.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="K",
        help="train K runs (seeds N..N+K-1) in OUT/seed-N and compare their "
        "embeddings (OUT/stability)",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint",
    )
    train.add_argument(
        "--src-column", type=int, help="0-based source column (default 1)"
    )
    train.add_argument(
        "--tgt-column", type=int, help="0-based target column (default 0)"
    )
    train.add_argument(
        "--valid", help="validation TSV (same columns): use it instead of splitting"
    )
    train.add_argument("--test", help="test TSV, with --valid")
    train.add_argument("--user-dict", help="jieba user dictionary for segmentation")
    train.add_argument(
        "--pretokenized",
        action="store_true",
        help="source is already segmented with spaces; keep it as it is",
    )
    train.add_argument(
        "--src-embeddings",
        metavar="FILE",
        help="initialise the source embeddings from word2vec (text or binary) "
        "or GloVe vectors; words not in FILE keep their random init",
    )
    train.add_argument(
        "--tgt-embeddings", metavar="FILE", help="the same for the target side"
    )
    train.add_argument(
        "--freeze-embeddings",
        action="store_true",
        help="keep the tables read from a file fixed instead of fine-tuning",
    )
    train.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train with N processes on this machine (starts torchrun; "
        "DistributedDataParallel, gloo)",
    )
    train.set_defaults(func=cmd_train)

    translate = commands.add_parser(
        "translate", help="translate sentences (args or stdin)"
    )
    translate.add_argument("run", help="run directory or checkpoint file")
    translate.add_argument(
        "text", nargs="*", help="sentences (default: one per stdin line)"
    )
    translate.add_argument("--beam", type=int, help="beam size (default: greedy)")
    translate.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        help="bf16: bfloat16 autocast, faster on CPUs with native bf16 (refused "
        "elsewhere); auto: bf16 where native, else fp32",
    )
    translate.add_argument("--batch-size", type=int, help="sentences per batch")
    translate.set_defaults(func=cmd_translate)

    evaluate = commands.add_parser("evaluate", help="BLEU and chrF on a test TSV")
    evaluate.add_argument("run", help="run directory or checkpoint file")
    evaluate.add_argument(
        "test", help="TSV, by default target TAB source (Tatoeba layout)"
    )
    evaluate.add_argument("--beam", type=int, help="beam size (default: greedy)")
    evaluate.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        help="bf16: bfloat16 autocast, faster on CPUs with native bf16 (refused "
        "elsewhere); auto: bf16 where native, else fp32",
    )
    evaluate.add_argument("--src-column", type=int, default=1)
    evaluate.add_argument("--tgt-column", type=int, default=0)
    evaluate.add_argument(
        "--hyp-out", help="where to write hypotheses (default TEST.hyp)"
    )
    evaluate.add_argument("--json", action="store_true", help="print scores as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    data = commands.add_parser("data", help="download corpora")
    data.add_argument(
        "name", choices=["tatoeba"], help="tatoeba: Mandarin-English export"
    )
    data.add_argument(
        "--cache-dir", help="default $SEQEMBED_CACHE or ~/.cache/seqembed"
    )
    data.add_argument(
        "--url", default=None, help="download address (default: manythings.org)"
    )
    data.add_argument("--force", action="store_true", help="download again")
    data.set_defaults(func=cmd_data)

    from seqembed.cli import analysis as cli_analysis
    from seqembed.cli import report as cli_report
    from seqembed.cli import visual as cli_visual

    for module in (cli_analysis, cli_visual, cli_report):
        module.add_commands(commands)
    return parser


def _missing_glyphs_as_log_lines() -> None:
    """matplotlib warns with a source line and its repr of the character
    ("Glyph 128579 (\\N{UPSIDE-DOWN FACE}) missing from font(s) ..."); a user
    gets one plain line instead. Other warnings are shown as Python shows them."""
    import re
    import warnings

    glyph = re.compile(r"Glyph (\d+) \(.*\) missing from font\(s\) (.*?)\.?$")
    show = warnings.showwarning
    if getattr(show, "seqembed", False):  # main() ran before in this process
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        found = glyph.match(str(message))
        if found is None:
            return show(message, category, filename, lineno, file, line)
        character, fonts = chr(int(found.group(1))), found.group(2)
        log.warning("no glyph for %s in %s: drawn as an empty box", character, fonts)

    showwarning.seqembed = True
    warnings.showwarning = showwarning


def main(argv: list[str] | None = None) -> int:
    # Before anything imports torch: the commands import it when they run.
    choose_wait_policy()
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # for train --nproc
    # `translate RUN --beam 4 TEXT...`: argparse stops filling a nargs="*"
    # positional at the first option, so sentences after options come back here.
    if (
        extras
        and args.command == "translate"
        and not any(x.startswith("-") for x in extras)
    ):
        args.text += extras
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="seqembed: %(message)s",
        stream=sys.stderr,
    )
    _missing_glyphs_as_log_lines()
    if getattr(args, "url", "unset") is None:
        from seqembed.data.download import DEFAULT_TATOEBA_URL

        args.url = DEFAULT_TATOEBA_URL
    try:
        return args.func(args)
    except InputError as error:
        if args.debug:
            raise
        _err(f"seqembed: error: {error}")
        return 2
    except OSError as error:  # a full disk, a read-only or missing folder
        if args.debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        _err(f"seqembed: error: {where}{error.strerror or error}")
        return 2
    except KeyboardInterrupt:
        _err("seqembed: interrupted")
        return 130
