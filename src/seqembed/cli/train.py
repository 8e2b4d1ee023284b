"""``seqembed train``: flags to config overrides, the corpus read as a stream,
one run (or one per seed, then their stability), Ctrl-C saving the batch.

Where to look: a resumed run starts from its own config.yaml
(``_train_config``), and what it may change is the one rule of
``seqembed.nmt.resume``, which ``train`` applies; ``_refuse_a_used_out``; the
corpus and held-out files are read in ``_training_data`` (the user
dictionary, ``--user-dict`` or ``data.user_dict``, by ``train``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from pathlib import Path

from seqembed.cli.options import add_command, add_out_dir, bounded, count
from seqembed.cli.terminal import ProgressReporter, print_sections, say
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
        "DistributedDataParallel, gloo)",
    )


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
    run_dir = Path(args.out)
    config = _train_config(args, run_dir)
    pairs, heldout = None, None
    # With --seeds, --resume continues the seeds that started and trains the
    # rest from the CORPUS, given again.
    if not args.resume or (args.seeds > 1 and args.corpus):
        pairs, heldout = _training_data(args, config, run_dir)
    if args.seeds > 1:
        return _train_seeds(args, config, run_dir, pairs, heldout)
    return _train_one(config, run_dir, pairs, args.resume, heldout)


def _overrides(args) -> list[str]:
    """The command's flags as ``--set`` overrides, after the user's own."""
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
    # JSON quotes: a path stays a string in YAML
    if args.user_dict:
        overrides.append(f"data.user_dict={json.dumps(args.user_dict)}")
    for side in ("src", "tgt"):
        if getattr(args, f"{side}_embeddings"):
            path = getattr(args, f"{side}_embeddings")
            overrides.append(f"model.{side}_embeddings={json.dumps(path)}")
    if args.freeze_embeddings:
        overrides.append("model.freeze_embeddings=true")
    return overrides


def _train_config(args, run_dir: Path):
    """The config to train with: on resume, the run's own with the flags
    given (``train`` refuses those the rule of ``nmt.resume`` does not allow)."""
    from seqembed.config import load_config, read_run_config
    from seqembed.nmt.checkpoint import kept_checkpoints

    resume_one = args.resume and args.seeds == 1
    if resume_one and not kept_checkpoints(run_dir):
        raise InputError("nothing to resume: no last.pt in the run directory", run_dir)
    # Resuming keeps the run's own settings (its epochs too) unless given again.
    saved = run_dir / "config.yaml"
    base = read_run_config(saved) if resume_one and saved.is_file() else None
    config = load_config(args.config, _overrides(args), base=base)
    pretrained_flags = args.src_embeddings or args.tgt_embeddings
    if resume_one and (pretrained_flags or args.freeze_embeddings):
        raise InputError(
            "--src/--tgt-embeddings and --freeze-embeddings start a run; "
            "a resumed run has its vectors in the checkpoint already"
        )
    if not args.resume:  # a missing file or a wrong width, before the corpus
        from seqembed.nmt.pretrained import check_files

        check_files(config.model)
    return config


def _refuse_a_used_out(args, config, run_dir: Path) -> None:
    if not args.resume and any(
        (run_dir / name).exists() for name in ("last.pt", f"seed-{config.train.seed}")
    ):
        raise InputError(
            "already holds a run; use --resume to continue it or another --out",
            run_dir,
        )


def _training_data(args, config, run_dir: Path):
    """(pairs, heldout): the corpus as a stream, and the --valid and --test
    pairs (or None)."""
    from seqembed.data.corpus import Corpus, SkipCounts, read_tsv
    from seqembed.textfile import check_file

    if not args.corpus:
        raise InputError("train needs a CORPUS (or --resume)")
    if len(args.corpus) > 2:
        raise InputError("train takes one TSV file, or a source and a target file")
    _refuse_a_used_out(args, config, run_dir)
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
    return pairs, heldout


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


def _train_one(config, run_dir, pairs, resume, heldout) -> int:
    from seqembed.nmt import distributed
    from seqembed.nmt.training import train

    main = distributed.is_main()
    with stop_on_ctrl_c(distributed.world_size() > 1, main) as stop_requested:
        result = train(
            config,
            run_dir,
            pairs,
            resume=resume,
            reporter=ProgressReporter(),
            heldout=heldout,
            stop_requested=stop_requested,
        )
    if result.interrupted:
        if main:
            saved = run_dir / "last.pt"
            say(f"seqembed: interrupted; saved {saved} (--resume continues)")
        return 130
    if main:
        say(
            f"stopped: {result.stopped_because}; best "
            f"{config.train.early_stopping_metric} {result.best_metric}; "
            f"run directory: {run_dir}"
        )
    return 0


def _train_seeds(args, config, out, pairs, heldout) -> int:
    """``--seeds K``: the same data split, K training seeds, one run each in
    OUT/seed-N; then the stability analysis across them in OUT/stability."""
    from dataclasses import replace

    from seqembed.analysis.run import analyze_run
    from seqembed.analysis.settings import AnalysisSettings
    from seqembed.analysis.stability import (
        stability_report,
        stability_sections,
        write_stability,
    )
    from seqembed.nmt.checkpoint import kept_checkpoints

    first = config.train.seed
    runs = [out / f"seed-{first + k}" for k in range(args.seeds)]
    for seed, run_dir in enumerate(runs, start=first):
        resume = args.resume and bool(kept_checkpoints(run_dir))
        if not resume and pairs is None:
            raise InputError(
                "has not started: give the CORPUS again to train it", run_dir
            )
        say(f"\n== training seed {seed} -> {run_dir}")
        seeded = replace(config, train=replace(config.train, seed=seed))
        status = _train_one(seeded, run_dir, pairs, resume, heldout)
        if status:
            return status
    settings = AnalysisSettings()
    results = [analyze_run(run, settings) for run in runs]
    report = stability_report(runs, results, settings)
    json_path, _ = write_stability(report, out / "stability")
    print_sections(stability_sections(report))
    say(f"\nWrote {json_path}")
    return 0
