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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from seqembed.checkpoint import load_latest_checkpoint, save_checkpoint
from seqembed.config import Config, from_dict, save_config, to_dict
from seqembed.corpus import Pair, SkipCounts
from seqembed.data import Batch, collate, epoch_batches
from seqembed.errors import InputError
from seqembed.evaluation import Translator, score
from seqembed.metrics_log import MetricsLog
from seqembed.model import Seq2Seq
from seqembed.prepare import (
    Split,
    build_vocabs,
    read_splits,
    split_corpus,
    tokenize_splits,
    train_subwords,
)
from seqembed.pretrained import apply_pretrained
from seqembed.segment import text_processing
from seqembed.subwords import SubwordModel, from_state, to_state
from seqembed.vocab import PAD, Vocab

log = logging.getLogger(__name__)


class Reporter(Protocol):
    """What the training loop tells its caller (the CLI draws a progress bar)."""

    def epoch_start(
        self, epoch: int, epochs: int, n_batches: int, done: int
    ) -> None: ...
    def step(self, loss: float, tgt_tokens_per_s: float) -> None: ...
    def epoch_end(self, metrics: dict) -> None: ...


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
    logits = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing)
    return criterion(logits.reshape(-1, logits.size(-1)), batch.tgt_out.reshape(-1))


def train_step(
    model, batch, optimizer, criterion, config: Config
) -> tuple[float, str | None]:
    """One optimiser step. Returns (loss, None), or (loss, problem) when the
    loss or the gradient norm is not finite: then the step is skipped and the
    model and the optimiser's state are exactly as they were."""
    optimizer.zero_grad(set_to_none=True)
    loss_sum = run_batch(model, batch, criterion, config.train.teacher_forcing)
    loss = loss_sum / batch.n_tgt_tokens  # mean over real target tokens
    value = loss.item()
    if not math.isfinite(value):
        return value, f"loss {value}"
    loss.backward()
    norm = float(nn.utils.clip_grad_norm_(model.parameters(), config.train.clip_norm))
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)  # clipping scaled them by nan
        return value, f"gradient norm {norm}"
    try:
        optimizer.step()
    except RuntimeError as error:  # lr 1e38: Adam's step size overflows float32
        raise InputError(
            f"the optimiser step failed ({str(error).splitlines()[0]}); "
            f"is train.lr ({config.train.lr:g}) far too large?"
        ) from error
    return value, None


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


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))


def _as_tuple(value):
    return (
        tuple(_as_tuple(v) for v in value)
        if isinstance(value, (list, tuple))
        else value
    )


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
    train_src: list[list[int]]
    train_tgt: list[list[int]]
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
        scheduler = self.scheduler
        return {
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


def start_session(
    config: Config,
    run_dir: Path,
    pairs: list[Pair] | None,
    resume: bool,
    user_dict: str | None,
    heldout: dict[str, list[Pair]] | None = None,
) -> Session:
    """Split and tokenise the data, build vocabularies, model and optimiser;
    with ``resume``, restore all of them from ``run_dir/last.pt``."""
    checkpoint = None
    if resume:
        checkpoint, path = load_latest_checkpoint(run_dir)
        if path.name != "last.pt":
            log.warning("resuming from %s", path)
        saved = to_dict(from_dict(checkpoint["config"], "checkpoint"))
        # Only the epoch limit and the budget may change on resume.
        saved["train"]["epochs"] = config.train.epochs
        saved["train"]["max_minutes"] = config.train.max_minutes
        config = from_dict(saved)
        user_dict = checkpoint.get("user_dict")
        splits = read_splits(run_dir)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        splits = split_corpus(pairs, config, run_dir, heldout)
    save_config(config, run_dir / "config.yaml")
    torch.manual_seed(config.train.seed)
    random.seed(config.train.seed)
    if config.train.threads > 0:
        torch.set_num_threads(config.train.threads)

    if checkpoint is not None:
        subwords = from_state(checkpoint)
    else:
        subwords = train_subwords(config, splits["train"], user_dict, run_dir)
    segmenter, tokenizer = text_processing(config.data, user_dict, subwords)
    skips = SkipCounts()
    data = tokenize_splits(splits, config, segmenter, tokenizer, skips)
    if skips.total:
        log.warning("%s", skips.summary())
    if checkpoint is not None:
        src_vocab = Vocab.from_dict(checkpoint["src_vocab"])
        tgt_vocab = Vocab.from_dict(checkpoint["tgt_vocab"])
    else:
        src_vocab, tgt_vocab = build_vocabs(config, data["train"], subwords)
    src_vocab.save(run_dir / "vocab.src.tsv")
    tgt_vocab.save(run_dir / "vocab.tgt.tsv")
    # With no validation split (a toy corpus), validate on the training data.
    valid = data["valid"] if data["valid"].pairs else data["train"]

    model = Seq2Seq.from_config(config.model, len(src_vocab), len(tgt_vocab))
    # Pretrained vectors replace the random rows before initial_embeddings
    # records them; on resume the checkpoint holds them and only freezing is
    # set again.
    apply_pretrained(
        model, src_vocab, tgt_vocab, config, run_dir, resume=checkpoint is not None
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    session = Session(
        config=config,
        run_dir=run_dir,
        user_dict=user_dict,
        subwords=subwords,
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        train_src=[src_vocab.encode(s) for s in data["train"].src],
        train_tgt=[tgt_vocab.encode(t) for t in data["train"].tgt],
        valid=valid,
        valid_src=[src_vocab.encode(s) for s in valid.src],
        valid_tgt=[tgt_vocab.encode(t) for t in valid.tgt],
        model=model,
        initial_embeddings={
            "src": model.encoder.embedding.weight.detach().clone(),
            "tgt": model.decoder.embedding.weight.detach().clone(),
            "out": model.decoder.output_projection.weight.detach().clone(),
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
        set_rng_state(checkpoint["rng"])
        session.last_saved = (
            f"{path.name} (epoch {session.counters['epoch']}, "
            f"batch {session.counters['position']})"
        )
        log.info(
            "resuming at epoch %d, batch %d",
            session.counters["epoch"],
            session.counters["position"],
        )
    log.info(
        "model: %d parameters; vocab src %d, tgt %d; train %d pairs",
        sum(p.numel() for p in model.parameters()),
        len(src_vocab),
        len(tgt_vocab),
        len(session.train_src),
    )
    return session


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


def step_scheduler(scheduler, watched: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(watched)
    elif scheduler is not None:
        scheduler.step()


def save_last(session: Session, elapsed: float, best: bool = False) -> None:
    """``last.pt`` (the older ones shifted down), and ``best.pt`` if asked."""
    state = session.checkpoint_state(elapsed)
    run_dir, counters = session.run_dir, session.counters
    save_checkpoint(state, run_dir / "last.pt", keep=session.config.train.keep_last)
    if best:
        save_checkpoint(state, run_dir / "best.pt")
    session.last_saved = (
        f"last.pt (epoch {counters['epoch']}, batch {counters['position']})"
    )


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
    pairs: list[Pair] | None = None,
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
    an ``InputError`` and leave the checkpoints as they were."""
    reporter = reporter or LogReporter()
    run_dir = Path(run_dir)
    started = time.monotonic()
    session = start_session(config, run_dir, pairs, resume, user_dict, heldout)
    config, model, counters = session.config, session.model, session.counters
    train_cfg = config.train
    criterion = nn.CrossEntropyLoss(
        ignore_index=PAD, reduction="sum", label_smoothing=train_cfg.label_smoothing
    )
    metrics_log = MetricsLog(run_dir)
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
            [len(s) for s in session.train_src],
            [len(t) for t in session.train_tgt],
            train_cfg.batch_size,
            train_cfg.seed,
            epoch,
        )
        model.train()  # dropout on; validation below switches it off and back
        reporter.epoch_start(
            epoch, train_cfg.epochs, len(batches), counters["position"]
        )
        tokens_now, tick, out_of_time = 0, time.monotonic(), False
        while counters["position"] < len(batches) and not out_of_time:
            if stop_requested():
                break
            index = batches[counters["position"]]
            batch = collate(
                [session.train_src[i] for i in index],
                [session.train_tgt[i] for i in index],
            )
            optimizer = session.optimizer
            loss, problem = train_step(model, batch, optimizer, criterion, config)
            counters["position"] += 1
            counters["step"] += 1
            if problem:
                skip_step(session, problem)
            else:
                counters["nonfinite_in_row"] = 0
                counters["epoch_loss_sum"] += loss * batch.n_tgt_tokens
                counters["epoch_tokens"] += batch.n_tgt_tokens
                tokens_now += batch.n_tgt_tokens
            reporter.step(loss, tokens_now / max(time.monotonic() - tick, 1e-9))
            out_of_time = time.monotonic() - started >= budget_s
            every = train_cfg.checkpoint_every_steps
            if every and counters["step"] % every == 0 and not out_of_time:
                if counters["position"] < len(batches):  # the epoch end saves
                    save_last(session, elapsed())
        if stop_requested():  # save exactly where we are; resume goes on from here
            save_last(session, elapsed())
            stopped_because = "interrupted; --resume continues from this batch"
            interrupted = True
            break
        epoch_complete = counters["position"] >= len(batches)

        # -- validate and record
        metrics = {
            "epoch": epoch,
            "step": counters["step"],
            "train_loss": counters["epoch_loss_sum"] / max(counters["epoch_tokens"], 1),
            "lr": session.optimizer.param_groups[0]["lr"],
            "tgt_tokens_per_s": tokens_now / max(time.monotonic() - tick, 1e-9),
            **validate(session),
        }
        if counters["skipped_steps"]:
            metrics["skipped_steps"] = counters["skipped_steps"]
        metrics["elapsed_s"] = round(elapsed(), 2)
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
