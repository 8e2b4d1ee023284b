"""``seqembed train``: the flags as ``seqembed.train``'s arguments, one call
per run (or one per seed, then their stability), Ctrl-C saving the batch,
``--nproc`` starting torchrun, the progress on the terminal.

Where to look: everything a run checks and reads before it trains (the
config, a resumed run's own config.yaml and the rule of ``nmt.resume``, an
out folder that holds a run, the vector files, the corpus, --valid/--test,
the user dictionary) is ``seqembed.api.training``'s, so the command line and
the library say the same things.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from pathlib import Path

from seqembed.cli.options import add_command, add_device, add_out_dir, bounded, count
from seqembed.cli.terminal import print_sections, say
from seqembed.errors import InputError


def register(commands) -> None:
    train = add_command(
        commands,
        "train",
        "train a model on a parallel corpus",
        "Train an LSTM encoder-decoder (Chinese -> English by default) on a TSV "
        "file or on two line-aligned files. The run directory gets the "
        "checkpoints (last.pt, best.pt), config.yaml, the vocabularies, "
        "metrics.jsonl and the data splits; Ctrl-C saves the current batch and "
        "--resume continues from there. Settings come from --config and --set "
        "(see the config sections data, vocab, model, train, decode).",
        "seqembed train cmn-eng.tsv --out-dir runs/tatoeba --max-minutes 10\n"
        "seqembed train --out-dir runs/tatoeba --resume --epochs 20",
    )
    train.add_argument(
        "corpus",
        nargs="*",
        metavar="CORPUS",
        help="a TSV file, or a source file and a line-aligned target file",
    )
    add_out_dir(train, "the run directory to create (required)", dest="out")
    train.add_argument(
        "--config", help="YAML config (sections data, vocab, model, train, decode)"
    )
    train.add_argument(
        "--set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable)",
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        action=bounded(0, above=True),
        metavar="M",
        help="wall-clock budget in minutes, e.g. 0.5",
    )
    train.add_argument(
        "--epochs", type=int, action=count(1), help="same as --set train.epochs=N"
    )
    train.add_argument("--seed", type=int, help="same as --set train.seed=N")
    _add_run_options(train)
    _add_data_options(train)
    _add_embedding_options(train)
    train.set_defaults(func=cmd_train)


def _add_run_options(train) -> None:
    """How many runs, and how: --seeds, --resume, --nproc."""
    train.add_argument(
        "--seeds",
        type=int,
        action=count(1),
        default=1,
        metavar="K",
        help="train K runs (seeds N..N+K-1) in OUT/seed-N and compare their "
        "embeddings (OUT/stability)",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out-dir from its last checkpoint",
    )
    train.add_argument(
        "--nproc",
        type=int,
        action=count(1),
        metavar="N",
        help="train with N processes on this machine (starts torchrun; "
        "DistributedDataParallel: gloo on the CPU, NCCL on GPUs, one per process)",
    )
    add_device(train, what="trains (train.device)")


def _add_data_options(train) -> None:
    for side, default in (("src", 1), ("tgt", 0)):
        train.add_argument(
            f"--{side}-column",
            type=int,
            action=count(0),
            metavar="I",
            help=f"0-based {side} column of a TSV (default {default})",
        )
    train.add_argument(
        "--valid",
        metavar="TSV",
        help="validation TSV (same columns): use it instead of splitting",
    )
    train.add_argument("--test", metavar="TSV", help="test TSV, with --valid")
    train.add_argument(
        "--user-dict", metavar="FILE", help="jieba user dictionary for segmentation"
    )
    train.add_argument(
        "--pretokenized",
        action="store_true",
        help="source is already segmented with spaces; keep it as it is",
    )


def _add_embedding_options(train) -> None:
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


def cmd_train(args) -> int:
    """One process, or one of torchrun's (WORLD_SIZE set); ``--nproc N``
    starts torchrun with N processes running this same command line."""
    from seqembed.nmt import distributed

    under_torchrun = distributed.Environment.read().world_size > 1
    if args.out is None:
        raise InputError("train needs --out-dir DIR, the run directory to create")
    if args.nproc is not None and under_torchrun:
        raise InputError("--nproc starts torchrun; under torchrun leave it out")
    if args.seeds > 1 and (under_torchrun or (args.nproc or 1) > 1):
        raise InputError("--seeds trains one run after another; under torchrun "
                         "or with --nproc train one seed at a time")  # fmt: skip
    if args.nproc is not None and args.nproc > 1:
        return distributed.launch(args.nproc, without_nproc(args.argv))
    with distributed.process_group(), distributed.rank_errors():
        if not distributed.is_main():  # rank 0 speaks for all
            logging.getLogger("seqembed").setLevel(logging.ERROR)
        return _train_command(args)


def without_nproc(argv: list[str]) -> list[str]:
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
    if len(args.corpus) > 2:
        raise InputError("train takes one TSV file, or a source and a target file")
    if args.seeds > 1:
        return _train_seeds(args)
    return _train_one(args, Path(args.out), args.resume, args.seed)


def _api_arguments(args) -> tuple[dict, dict]:
    """The flags as ``seqembed.train``'s named arguments, and (those it has
    no name for) as config keys; both come after ``--config`` and ``--set``."""
    named = {
        "max_minutes": args.max_minutes,
        "epochs": args.epochs,
        "user_dict": args.user_dict,
        "src_embeddings": args.src_embeddings,
        "tgt_embeddings": args.tgt_embeddings,
        "freeze_embeddings": args.freeze_embeddings,
    }
    settings = {}
    if args.src_column is not None:
        settings["data.src_column"] = args.src_column
    if args.tgt_column is not None:
        settings["data.tgt_column"] = args.tgt_column
    if args.pretokenized:
        settings["data.src_segmentation"] = "pretokenized"
    if args.device is not None:
        settings["train.device"] = args.device
    return named, settings


@contextlib.contextmanager
def stop_on_ctrl_c(distributed: bool = False, speak: bool = True):
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
            say("\nseqembed: stopping after this batch to save (Ctrl-C again aborts)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: requested_at is not None
    finally:
        signal.signal(signal.SIGINT, previous)


def _train_one(args, run_dir: Path, resume: bool, seed: int | None) -> int:
    """One ``seqembed.train`` call, the terminal showing its progress."""
    from seqembed.api.training import train
    from seqembed.cli.terminal import TrainingProgress
    from seqembed.nmt import distributed

    named, settings = _api_arguments(args)
    corpus = tuple(args.corpus) if len(args.corpus) == 2 else (args.corpus or [None])[0]
    main = distributed.is_main()
    with stop_on_ctrl_c(distributed.world_size() > 1, main) as stop_requested:
        run = train(corpus, run_dir, config=args.config, overrides=args.set or (),
                    resume=resume, seed=seed, valid=args.valid, test=args.test,
                    progress=TrainingProgress(), stop_requested=stop_requested,
                    **named, **settings)  # fmt: skip
    result = run.training
    if result.interrupted:
        if main:
            saved = run_dir / "last.pt"
            say(f"seqembed: interrupted; saved {saved} (--resume continues)")
        return 130
    if main:
        say(
            f"stopped: {result.stopped_because}; best "
            f"{run.config.train.early_stopping_metric} {result.best_metric}; "
            f"run directory: {run_dir}"
        )
    return 0


def _train_seeds(args) -> int:
    """``--seeds K``: the same data split, K training seeds, one run each in
    OUT/seed-N; then the stability analysis across them in OUT/stability.
    With --resume the seeds that started go on and the rest train from the
    CORPUS, given again."""
    from seqembed.analysis.settings import AnalysisSettings
    from seqembed.analysis.stability import (
        stability_report,
        stability_sections,
        write_stability,
    )
    from seqembed.api.analysis import analyze
    from seqembed.api.training import named_settings, refuse_a_used_out, resolve_config
    from seqembed.nmt.checkpoint import kept_checkpoints

    out = Path(args.out)
    if not args.resume:
        refuse_a_used_out(out)
    first = args.seed
    if first is None:  # the seed --config or --set gives, else the default
        named, settings = _api_arguments(args)
        given = named_settings(**named) | settings
        first = resolve_config(args.config, args.set or (), given).train.seed
    runs = [out / f"seed-{first + k}" for k in range(args.seeds)]
    for seed, run_dir in enumerate(runs, start=first):
        resume = args.resume and bool(kept_checkpoints(run_dir))
        if args.resume and not resume and not args.corpus:
            raise InputError(
                "has not started: give the CORPUS again to train it", run_dir
            )
        say(f"\n== training seed {seed} -> {run_dir}")
        status = _train_one(args, run_dir, resume, seed)
        if status:
            return status
    settings = AnalysisSettings()
    results = [analyze(run, settings=settings).data for run in runs]
    report = stability_report(runs, results, settings)
    json_path, _ = write_stability(report, out / "stability")
    print_sections(stability_sections(report))
    say(f"\nWrote {json_path}")
    return 0
