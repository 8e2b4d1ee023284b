"""Training: the loop in named phases (the data it trains on: ``prepare``).

The loop (``train``) reads top to bottom: set up, then per epoch run the
batches, validate, adjust the learning rate, keep checkpoints, and stop early,
at the epoch limit or at the wall-clock budget. Everything else is a helper.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from seqembed.config import Config, from_dict, save_config, to_dict
from seqembed.data.batches import (
    Batch,
    collate,
    epoch_batches,
    rank_share,
    target_tokens,
)
from seqembed.data.corpus import SIDES, Corpus, Pair, SkipCounts
from seqembed.data.prepare import (
    Split,
    build_vocabs,
    count_lines,
    read_splits,
    split_corpus,
    tokenize_splits,
    train_subwords,
)
from seqembed.data.segment import text_processing
from seqembed.data.subwords import SubwordModel, from_state, to_state
from seqembed.data.token_cache import TokenArrays, build_cache, open_cache
from seqembed.data.vocab import PAD, Vocab
from seqembed.errors import InputError
from seqembed.nmt import distributed
from seqembed.nmt.build import build_model
from seqembed.nmt.checkpoint import (
    load_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)
from seqembed.nmt.cpu import allocator
from seqembed.nmt.devices import cpu_info, resolve_precision
from seqembed.nmt.evaluation import Translator, score
from seqembed.nmt.metrics_log import MetricsLog
from seqembed.nmt.model import Seq2Seq
from seqembed.nmt.pretrained import apply_pretrained
from seqembed.nmt.rng import restore_rng, rng_state, seed_rank

log = logging.getLogger(__name__)


class Reporter(Protocol):
    """What the training loop tells its caller (the CLI draws a progress bar)."""

    def epoch_start(
        self, epoch: int, epochs: int, n_batches: int, done: int
    ) -> None: ...
    def step(self, loss: float, tgt_tokens_per_s: float) -> None: ...
    def epoch_end(self, metrics: dict) -> None: ...


class SilentReporter:
    """Ranks other than 0 of a distributed run: rank 0 reports for all."""

    def epoch_start(self, epoch, epochs, n_batches, done):
        pass

    def step(self, loss, tgt_tokens_per_s):
        pass

    def epoch_end(self, metrics):
        pass


class NoRecords:
    """``MetricsLog``'s place on ranks other than 0: only rank 0 writes."""

    def write(self, metrics: dict) -> None:
        pass

    def drop_after(self, step: int) -> None:
        pass

    def write_embeddings(self, epoch: int, model) -> None:
        pass

    def close(self) -> None:
        pass


class LogReporter:
    def epoch_start(self, epoch, epochs, n_batches, done):
        log.info("epoch %d/%d: %d batches", epoch, epochs, n_batches)

    def step(self, loss, tgt_tokens_per_s):
        pass

    def epoch_end(self, metrics):
        log.info("epoch %d: %s", metrics["epoch"], metrics)


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    best_metric: float | None
    stopped_because: str
    final_metrics: dict
    interrupted: bool = False  # stopped on request; last.pt is mid-epoch


# ---------------------------------------------------------------- steps


def run_batch(model: Seq2Seq, batch: Batch, criterion, teacher_forcing: float):
    """Forward pass; returns the summed loss over target tokens."""
    logits, targets = model(
        batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, teacher_forcing
    )
    # The loss in float32 even under bf16 autocast: log-softmax over the
    # target vocabulary loses too much in 8 mantissa bits.
    return criterion(logits.float(), targets)


def train_step(
    model,
    batch,
    optimizer,
    criterion,
    config: Config,
    n_tokens: int | None = None,
    weight: float = 1.0,
) -> tuple[float, str | None]:
    """One optimiser step. Returns (loss, None), or (loss, problem) when the
    loss or the gradient norm is not finite: then the step is skipped and the
    model and the optimiser's state are exactly as they were.

    Distributed, ``batch`` is this rank's share of a global batch of
    ``n_tokens`` target tokens, ``model`` is wrapped in DistributedDataParallel,
    and ``weight`` 0 marks a stand-in for an empty share. The loss returned,
    and whether the step is skipped, are the same on every rank."""
    optimizer.zero_grad(set_to_none=True)
    n_tokens = n_tokens or batch.n_tgt_tokens
    ranks = distributed.world_size()
    bf16 = config.train.precision == "bf16"
    with torch.autocast(batch.src.device.type, torch.bfloat16, enabled=bf16):
        loss_sum = run_batch(model, batch, criterion, config.train.teacher_forcing)
    # The mean over the global batch's real target tokens. DDP averages the
    # gradients over ranks, i.e. divides their sum by `ranks`; the factor
    # `ranks` undoes that, so the gradient is that of sum(all ranks' token
    # losses) / n_tokens: 2 processes with B/2 pairs each step like 1 with B.
    loss = loss_sum * (weight * ranks) / n_tokens
    value = float(distributed.all_reduce_sum(loss.detach())) / ranks
    if not math.isfinite(value):
        return value, f"loss {value}"
    loss.backward()  # DDP: the gradient all-reduce happens here
    norm = clip_gradients(model, config.train.clip_norm)
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return value, f"gradient norm {norm}"
    try:
        optimizer.step()
    except RuntimeError as error:  # lr 1e38: Adam's step size overflows float32
        raise InputError(
            f"the optimiser step failed ({str(error).splitlines()[0]}); "
            f"is train.lr ({config.train.lr:g}) far too large?"
        ) from error
    return value, None


def clip_gradients(model: nn.Module, max_norm: float) -> float:
    """``clip_grad_norm_`` (same result), but the gradients are only scaled
    when the norm is over the limit: it multiplies all 11M of them by 1.0
    otherwise, ~3% of an input-feeding step on a CPU. Returns the norm."""
    parameters = [p for p in model.parameters() if p.grad is not None]
    norm = nn.utils.get_total_norm([p.grad for p in parameters])
    value = float(norm)
    # clip_grad_norm_'s own factor (a tensor, as there), which it clamps to 1
    if math.isfinite(value) and max_norm / (norm + 1e-6) < 1:
        nn.utils.clip_grads_with_norm_(parameters, max_norm, norm)
    return value


@torch.no_grad()
def validation_loss(model, src_ids, tgt_ids, batch_size: int) -> float:
    model.eval()
    criterion = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    lengths = [len(x) for x in src_ids]
    total, tokens = 0.0, 0
    for index in epoch_batches(lengths, lengths, batch_size, 0, 0, shuffle=False):
        batch = collate([src_ids[i] for i in index], [tgt_ids[i] for i in index])
        total += float(run_batch(model, batch, criterion, 1.0))
        tokens += batch.n_tgt_tokens
    model.train()
    return total / max(tokens, 1)


def make_scheduler(optimizer, config: Config):
    train = config.train
    if train.lr_schedule == "plateau":
        mode = "max" if train.early_stopping_metric == "bleu" else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=mode,
            factor=train.lr_decay,
            patience=train.lr_patience,
            min_lr=train.min_lr,
        )
    if train.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=train.lr_step_epochs, gamma=train.lr_decay
        )
    return None


# ---------------------------------------------------------------- set-up


@dataclass
class Session:
    """Everything the loop works with, built by ``start_session``."""

    config: Config
    run_dir: Path
    user_dict: str | None
    subwords: dict[str, SubwordModel]  # the SentencePiece sides' models
    src_vocab: Vocab
    tgt_vocab: Vocab
    train_src: TokenArrays  # memory-mapped from RUN/cache for a large corpus
    train_tgt: TokenArrays
    valid: Split  # raw pairs and tokens, for BLEU
    valid_src: list[list[int]]
    valid_tgt: list[list[int]]
    model: Seq2Seq
    initial_embeddings: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: object
    counters: dict
    last_saved: str | None = None  # "last.pt (epoch 3, batch 40)", for messages

    def checkpoint_state(self, elapsed_s: float) -> dict:
        """Every rank calls it (it gathers the RNG states); rank 0 saves it."""
        scheduler = self.scheduler
        every_rank = distributed.gather_to_main(rng_state())
        state = {
            "config": to_dict(self.config),
            "src_vocab": self.src_vocab.to_dict(),
            "tgt_vocab": self.tgt_vocab.to_dict(),
            "user_dict": self.user_dict,
            "subword_models": to_state(self.subwords),
            "model": self.model.state_dict(),
            "initial_embeddings": self.initial_embeddings,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "counters": {**self.counters, "elapsed_s": elapsed_s},
            "rng": rng_state(),
        }
        if distributed.world_size() > 1:  # each rank's, for a bitwise resume
            state["rng_ranks"] = every_rank
        return state


def start_session(
    config: Config,
    run_dir: Path,
    pairs: list[Pair] | Corpus | None,
    resume: bool,
    user_dict: str | None,
    heldout: dict[str, list[Pair]] | None = None,
) -> Session:
    """Split and tokenise the data, build vocabularies, model and optimiser;
    with ``resume``, restore all of them from ``run_dir/last.pt``.

    Distributed, rank 0 splits the corpus into ``RUN/data``, trains the
    subword models and builds the token cache, while the other ranks wait;
    then every rank reads the files there (one folder that all machines
    share, as resuming from its checkpoint does). Only rank 0 writes to
    ``run_dir``."""
    checkpoint = None
    main = distributed.is_main()
    if resume:
        checkpoint, path = _load_for_resume(run_dir)
        saved = to_dict(from_dict(checkpoint["config"], "checkpoint"))
        # Only the epoch limit, the budget and the precision (a bf16 run
        # resumed on a CPU without bf16) may change on resume.
        for key in ("epochs", "max_minutes", "precision"):
            saved["train"][key] = getattr(config.train, key)
        config = from_dict(saved)
        user_dict = checkpoint.get("user_dict")
    precision = resolve_precision(config.train.precision, "train.precision")
    config = replace(config, train=replace(config.train, precision=precision))
    if not resume:
        # from_main: the other ranks wait until the files are written
        distributed.from_main(lambda: split_corpus(pairs, config, run_dir, heldout))
    n_train = count_lines(run_dir / "data" / "train.tsv")
    cache_train = n_train >= config.data.cache_min_pairs
    # A training split for the cache is read from its file by the cache's
    # workers, and never held here; valid and test are small (data.valid_size).
    splits = read_splits(run_dir, ("valid", "test") if cache_train else SIDES)
    splits.setdefault("train", [])
    if main:
        save_config(config, run_dir / "config.yaml")
    torch.manual_seed(config.train.seed)
    random.seed(config.train.seed)
    if config.train.threads > 0:
        torch.set_num_threads(config.train.threads)
    allocator.keep_freed_memory()

    if checkpoint is not None:
        subwords = from_state(checkpoint)
    else:
        # rank 0 trains them (and writes them to run_dir); every rank uses them
        trained = distributed.from_main(
            lambda: to_state(train_subwords(config, user_dict, run_dir))
        )
        subwords = from_state({"subword_models": trained})
    segmenter, tokenizer = text_processing(config.data, user_dict, subwords)
    vocabs = None
    if checkpoint is not None:
        vocabs = (
            Vocab.from_dict(checkpoint["src_vocab"]),
            Vocab.from_dict(checkpoint["tgt_vocab"]),
        )
    cached = None
    if cache_train:
        cached = _token_cache(config, run_dir, user_dict, subwords, vocabs)
    skips = SkipCounts()
    data = tokenize_splits(splits, config, segmenter, tokenizer, skips)
    if skips.total:
        log.warning("%s", skips.summary())
    if vocabs is not None:
        src_vocab, tgt_vocab = vocabs
    elif cached is not None:
        src_vocab, tgt_vocab = cached["vocabs"]
    else:
        src_vocab, tgt_vocab = build_vocabs(config, data["train"], subwords)
    if cached is not None:
        train_src, train_tgt = cached["src"], cached["tgt"]
    else:
        train_src = TokenArrays.from_lists(
            [src_vocab.encode(s) for s in data["train"].src]
        )
        train_tgt = TokenArrays.from_lists(
            [tgt_vocab.encode(t) for t in data["train"].tgt]
        )
    if main:
        src_vocab.save(run_dir / "vocab.src.tsv")
        tgt_vocab.save(run_dir / "vocab.tgt.tsv")
    # With no validation split (a toy corpus), validate on the training data.
    valid = data["valid"] if data["valid"].pairs else data["train"]
    if not valid.pairs:
        raise InputError(
            "a corpus large enough for the token cache needs a valid split"
        )

    model = build_model(config.model, len(src_vocab), len(tgt_vocab))
    # Pretrained vectors replace the random rows before initial_embeddings
    # records them; on resume the checkpoint holds them and only freezing is
    # set again.
    apply_pretrained(
        model, src_vocab, tgt_vocab, config, run_dir, resume=checkpoint is not None
    )
    if distributed.rank() > 0:  # the same initial model, its own dropout masks
        seed_rank(config.train.seed, distributed.rank())
    # fused: one kernel per parameter instead of ~10 elementwise passes;
    # 8% more training tokens/s on the CPU (bench/speed.py).
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, fused=True)
    session = Session(
        config=config,
        run_dir=run_dir,
        user_dict=user_dict,
        subwords=subwords,
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        train_src=train_src,
        train_tgt=train_tgt,
        valid=valid,
        valid_src=[src_vocab.encode(s) for s in valid.src],
        valid_tgt=[tgt_vocab.encode(t) for t in valid.tgt],
        model=model,
        initial_embeddings={
            kind: weight.detach().clone()
            for kind, weight in model.embedding_tables().items()
        },
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, config),
        counters={
            "epoch": 1,
            "position": 0,  # batches of this epoch done
            "step": 0,  # batches done in all (skipped ones too)
            "best": None,
            "bad_epochs": 0,
            "elapsed_s": 0.0,
            # this epoch's loss so far, so a mid-epoch resume reports the
            # same epoch loss as an uninterrupted run
            "epoch_loss_sum": 0.0,
            "epoch_tokens": 0,
            "skipped_steps": 0,  # non-finite loss or gradient, in all
            "nonfinite_in_row": 0,
        },
    )
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        session.initial_embeddings = checkpoint["initial_embeddings"]
        optimizer.load_state_dict(checkpoint["optimizer"])
        if session.scheduler is not None and checkpoint.get("scheduler"):
            session.scheduler.load_state_dict(checkpoint["scheduler"])
        session.counters.update(checkpoint["counters"])
        restore_rng(checkpoint)
        session.last_saved = (
            f"{path.name} (epoch {session.counters['epoch']}, "
            f"batch {session.counters['position']})"
        )
        log.info(
            "resuming at epoch %d, batch %d",
            session.counters["epoch"],
            session.counters["position"],
        )
    log.info("CPU: %s", cpu_info().describe())
    log.info(
        "model: %d parameters; vocab src %d, tgt %d; train %d pairs",
        sum(p.numel() for p in model.parameters()),
        len(src_vocab),
        len(tgt_vocab),
        len(session.train_src),
    )
    return session


def _token_cache(config, run_dir, user_dict, subwords, vocabs) -> dict:
    """The training split's token ids in ``RUN/cache`` (``token_cache``):
    rank 0 tokenises ``RUN/data/train.tsv`` unless a resumed run's cache is
    there; every rank then memory-maps the arrays."""
    cache_dir = run_dir / "cache"

    def build() -> dict:
        if vocabs is not None and open_cache(cache_dir) is not None:
            return {"vocabs": None, "skips": None}  # resume: the run's own cache
        cache = build_cache(
            run_dir / "data" / "train.tsv",
            cache_dir,
            config,
            user_dict,
            subwords,
            config.data.tokenize_processes,
            vocabs,
        )
        if cache.skips.total:
            log.warning("training split: %s", cache.skips.summary())
        built = cache.src_vocab is not None
        return {"vocabs": (cache.src_vocab, cache.tgt_vocab) if built else None}

    result = distributed.from_main(build)
    cache = open_cache(cache_dir)
    return {"vocabs": result["vocabs"], "src": cache.src, "tgt": cache.tgt}


def _load_for_resume(run_dir: Path) -> tuple[dict, Path]:
    """The newest checkpoint that loads, chosen by rank 0 (which renames
    damaged ones out of the way), then read by every rank."""

    def choose() -> tuple[dict, Path]:
        checkpoint, path = load_latest_checkpoint(run_dir)
        if path.name != "last.pt":
            log.warning("resuming from %s", path)
        return checkpoint, path

    checkpoint, path = choose() if distributed.is_main() else (None, None)
    path = distributed.from_main(lambda: path)
    return checkpoint or load_checkpoint(path), path


def validate(session: Session) -> dict:
    """Validation loss, and BLEU/chrF of greedy translations (detokenised)."""
    config = session.config
    metrics = {
        "valid_loss": validation_loss(
            session.model,
            session.valid_src,
            session.valid_tgt,
            config.decode.batch_size,
        )
    }
    limit = config.train.valid_bleu_max or len(session.valid.pairs)
    translator = Translator(
        session.model,
        config,
        session.src_vocab,
        session.tgt_vocab,
        session.user_dict,
        session.subwords,
    )
    hypotheses = translator.translate_tokens(session.valid.src[:limit], beam_size=1)
    scores = score(
        [translator.tokenizer.detokenize(h) for h in hypotheses],
        [pair.tgt for pair in session.valid.pairs[:limit]],
        config.data.lowercase,
    )
    metrics.update(valid_bleu=scores.bleu, valid_chrf=scores.chrf)
    return metrics


def epoch_metrics(
    session: Session, epoch: int, tgt_tokens_per_s: float, elapsed: Callable
) -> dict:
    """The line ``metrics.jsonl`` gets for one validation."""
    counters = session.counters
    metrics = {
        "epoch": epoch,
        "step": counters["step"],
        "train_loss": counters["epoch_loss_sum"] / max(counters["epoch_tokens"], 1),
        "lr": session.optimizer.param_groups[0]["lr"],
        "tgt_tokens_per_s": tgt_tokens_per_s,
        **validate(session),
    }
    if counters["skipped_steps"]:
        metrics["skipped_steps"] = counters["skipped_steps"]
    metrics["elapsed_s"] = round(elapsed(), 2)
    return metrics


def step_scheduler(scheduler, watched: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(watched)
    elif scheduler is not None:
        scheduler.step()


def save_last(session: Session, elapsed: float, best: bool = False) -> None:
    """``last.pt`` (the older ones shifted down), and ``best.pt`` if asked.
    Every rank calls it; rank 0 writes, and the others wait until it has."""
    state = session.checkpoint_state(elapsed)
    run_dir, counters = session.run_dir, session.counters
    if distributed.is_main():
        keep = session.config.train.keep_last
        save_checkpoint(state, run_dir / "last.pt", keep=keep)
        if best:
            save_checkpoint(state, run_dir / "best.pt")
    distributed.barrier()
    session.last_saved = (
        f"last.pt (epoch {counters['epoch']}, batch {counters['position']})"
    )


def global_step(
    session: Session, model, index: list[int], criterion
) -> tuple[float, str | None, int]:
    """``train_step`` on one global batch (``index``), of which this rank
    trains on its share. Returns the loss over the whole global batch, the
    problem if the step was skipped, and the global batch's target tokens."""
    share = rank_share(index, distributed.rank(), distributed.world_size())
    # A batch with fewer pairs than ranks: a rank with none still has to take
    # part in the gradient all-reduce, so it runs one pair that counts for 0.
    weight = 1.0 if share else 0.0
    share = share or index[:1]
    batch = collate(
        [session.train_src[i] for i in share], [session.train_tgt[i] for i in share]
    )
    n_tokens = target_tokens(session.train_tgt, index)
    loss, problem = train_step(
        model, batch, session.optimizer, criterion, session.config, n_tokens, weight
    )
    return loss, problem, n_tokens


def skip_step(session: Session, problem: str) -> None:
    """Count a skipped non-finite step; too many in a row end training."""
    counters, limit = session.counters, session.config.train.max_nonfinite_steps
    counters["skipped_steps"] += 1
    counters["nonfinite_in_row"] += 1
    where = f"epoch {counters['epoch']}, batch {counters['position']}"
    log.warning(
        "%s: %s; step skipped, model unchanged (%d in a row, limit %d)",
        where, problem, counters["nonfinite_in_row"], limit,
    )  # fmt: skip
    if counters["nonfinite_in_row"] >= limit:
        saved = session.last_saved
        kept = f"{saved} is intact" if saved else "no checkpoint had been saved"
        raise InputError(
            f"training stopped: {limit} steps in a row had a non-finite loss or "
            f"gradient (last at {where}: {problem}); {kept}. Lower train.lr "
            f"(now {session.config.train.lr:g}) or check the data",
            session.run_dir,
        )


# ---------------------------------------------------------------- the loop


def train(
    config: Config,
    run_dir: Path,
    pairs: list[Pair] | Corpus | None = None,
    *,
    resume: bool = False,
    user_dict: str | None = None,
    reporter: Reporter | None = None,
    heldout: dict[str, list[Pair]] | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Train on ``pairs`` (or, with ``resume``, continue the run in ``run_dir``).

    ``heldout`` gives the validation and test pairs instead of splitting them
    off ``pairs``. ``stop_requested`` is asked after every batch (the CLI
    answers True after Ctrl-C): then ``last.pt`` is saved at that batch, with
    no validation, and training returns. A batch with a non-finite loss or
    gradient is skipped; ``train.max_nonfinite_steps`` of them in a row raise
    an ``InputError`` and leave the checkpoints as they were.

    Under torchrun every process calls this; they train one model together
    (see ``distributed``), each rank on its share of every batch, and follow
    the decisions rank 0 or all of them together make. Only rank 0 reports
    and writes files."""
    distributed.init()
    main = distributed.is_main()
    reporter = (reporter or LogReporter()) if main else SilentReporter()
    run_dir = Path(run_dir)
    started = time.monotonic()
    session = start_session(config, run_dir, pairs, resume, user_dict, heldout)
    config, model, counters = session.config, session.model, session.counters
    stepper = distributed.wrap(model)  # DistributedDataParallel under torchrun
    train_cfg = config.train
    criterion = nn.CrossEntropyLoss(
        ignore_index=PAD, reduction="sum", label_smoothing=train_cfg.label_smoothing
    )
    metrics_log = MetricsLog(run_dir) if main else NoRecords()
    if resume:  # lines a crash left after the checkpoint would come twice
        metrics_log.drop_after(counters["step"])
    else:
        metrics_log.write_embeddings(0, model)
    # The budget is per invocation: `--resume --max-minutes 10` trains 10 more.
    budget_s = train_cfg.max_minutes * 60 if train_cfg.max_minutes else math.inf
    higher_is_better = train_cfg.early_stopping_metric == "bleu"
    stopped_because, metrics, interrupted = "epoch limit", {}, False

    def elapsed() -> float:
        return counters["elapsed_s"] + time.monotonic() - started

    while counters["epoch"] <= train_cfg.epochs:
        # -- one epoch of batches, in an order fixed by (seed, epoch)
        epoch = counters["epoch"]
        batches = epoch_batches(
            session.train_src.lengths,
            session.train_tgt.lengths,
            train_cfg.batch_size,
            train_cfg.seed,
            epoch,
        )
        stepper.train()  # dropout on; validation below switches it off and back
        reporter.epoch_start(
            epoch, train_cfg.epochs, len(batches), counters["position"]
        )
        tokens_now, tick = 0, time.monotonic()
        # Stop and time-budget decisions are taken by all ranks together.
        stop, out_of_time = distributed.any_rank(stop_requested(), False)
        while counters["position"] < len(batches) and not (stop or out_of_time):
            index = batches[counters["position"]]
            loss, problem, n_tokens = global_step(session, stepper, index, criterion)
            counters["position"] += 1
            counters["step"] += 1
            if problem:
                skip_step(session, problem)
            else:
                counters["nonfinite_in_row"] = 0
                counters["epoch_loss_sum"] += loss * n_tokens
                counters["epoch_tokens"] += n_tokens
                tokens_now += n_tokens
            reporter.step(loss, tokens_now / max(time.monotonic() - tick, 1e-9))
            stop, out_of_time = distributed.any_rank(
                stop_requested(), time.monotonic() - started >= budget_s
            )
            every = train_cfg.checkpoint_every_steps
            if every and counters["step"] % every == 0 and not (stop or out_of_time):
                if counters["position"] < len(batches):  # the epoch end saves
                    save_last(session, elapsed())
        if stop:  # save exactly where we are; resume goes on from here
            save_last(session, elapsed())
            stopped_because = "interrupted; --resume continues from this batch"
            interrupted = True
            break
        epoch_complete = counters["position"] >= len(batches)

        # -- validate and record (rank 0 validates; every rank follows it)
        throughput = tokens_now / max(time.monotonic() - tick, 1e-9)
        metrics = distributed.from_main(
            partial(epoch_metrics, session, epoch, throughput, elapsed)
        )
        metrics_log.write(metrics)
        reporter.epoch_end(metrics)

        # -- best so far, learning rate, next epoch
        watched = metrics["valid_bleu" if higher_is_better else "valid_loss"]
        best = counters["best"]
        improved = best is None or (
            watched > best if higher_is_better else watched < best
        )
        if improved:
            counters["best"], counters["bad_epochs"] = watched, 0
        if epoch_complete:
            counters["bad_epochs"] += 0 if improved else 1
            step_scheduler(session.scheduler, watched)
            snapshot_every = train_cfg.embedding_snapshot_every
            if snapshot_every and epoch % snapshot_every == 0:
                metrics_log.write_embeddings(epoch, model)
            counters.update(epoch=epoch + 1, position=0)
            counters.update(epoch_loss_sum=0.0, epoch_tokens=0)

        # -- checkpoints: last always, best when improved
        save_last(session, elapsed(), best=improved)

        # -- stop?
        if out_of_time:
            stopped_because = f"time budget ({train_cfg.max_minutes:g} min)"
            break
        if counters["bad_epochs"] >= train_cfg.patience > 0:
            stopped_because = (
                f"early stopping: no better in {train_cfg.patience} epochs"
            )
            break

    metrics_log.close()
    return TrainResult(
        run_dir=run_dir,
        epochs_done=counters["epoch"] - 1,
        best_metric=counters["best"],
        stopped_because=stopped_because,
        final_metrics=metrics,
        interrupted=interrupted,
    )
