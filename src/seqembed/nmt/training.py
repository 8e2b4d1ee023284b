"""Training: the loop in named phases (its set-up: ``session``; one step:
``steps``; the data it trains on: ``data.prepare``).

The loop (``train``) reads top to bottom: set up, then per epoch run the
batches, validate, adjust the learning rate, keep checkpoints, and stop early,
at the epoch limit or at the wall-clock budget. Everything else is a helper.

Under torchrun every process calls ``train``; they train one model together
(see ``distributed``), each rank on its share of every batch, and follow the
decisions rank 0 or all of them together make. Only rank 0 reports and
writes files.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import torch

from seqembed.config import Config, TrainConfig
from seqembed.data.batches import epoch_batches
from seqembed.data.corpus import Corpus, Pair
from seqembed.nmt import distributed
from seqembed.nmt.devices import deterministic_algorithms, resolve_device
from seqembed.nmt.evaluation import Translator, score
from seqembed.nmt.loop import global_step, run_batches, save_last
from seqembed.nmt.metrics_log import MetricsLog
from seqembed.nmt.session import Counters, Session, start_session
from seqembed.nmt.steps import (
    clip_gradients,
    step_scheduler,
    train_step,
    training_loss,
    validation_loss,
)

__all__ = [
    "LogReporter",
    "Reporter",
    "Session",
    "TrainResult",
    "clip_gradients",
    "global_step",
    "start_session",
    "train",
    "train_step",
    "validate",
]

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted; --resume continues from this batch"


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


# ---------------------------------------------------------------- phases


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
        "step": counters.step,
        "train_loss": counters.epoch_loss_sum / max(counters.epoch_tokens, 1),
        "lr": session.optimizer.param_groups[0]["lr"],
        "tgt_tokens_per_s": tgt_tokens_per_s,
        **validate(session),
    }
    if counters.skipped_steps:
        metrics["skipped_steps"] = counters.skipped_steps
    metrics["elapsed_s"] = round(elapsed(), 2)
    return metrics


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
    """Train on ``pairs`` (or, with ``resume``, continue the run in ``run_dir``
    as ``nmt.resume`` allows). ``user_dict``: the jieba dictionary's text
    (None: the file ``data.user_dict`` names); ``heldout``: the validation
    and test pairs, instead of splitting them off ``pairs``.

    ``stop_requested`` is asked after every batch (the CLI answers True after
    Ctrl-C): then ``last.pt`` is saved at that batch, and training returns.
    A batch with a non-finite loss or gradient is skipped; too many in a row
    (``skip_step``) raise an ``InputError``, the checkpoints left intact.

    ``train.deterministic`` holds while it runs (``devices.deterministic_
    algorithms``); the process's own settings are put back after."""
    with deterministic_algorithms(config.train.deterministic):
        return _train(config, run_dir, pairs, resume, user_dict, reporter,
                      heldout, stop_requested)  # fmt: skip


def _train(config, run_dir, pairs, resume, user_dict, reporter, heldout,
           stop_requested) -> TrainResult:  # fmt: skip
    """``train``'s loop."""
    run_dir, started, device = Path(run_dir), time.monotonic(), training_device(config)
    main = distributed.is_main()
    reporter = (reporter or LogReporter()) if main else SilentReporter()
    session = start_session(config, run_dir, pairs, resume, user_dict, heldout, device)
    config, counters = session.config, session.counters
    clock = Clock(started, counters.elapsed_s, config.train.max_minutes)
    stepper = distributed.wrap(session.model)  # DistributedDataParallel, torchrun
    criterion = training_loss(config.train.label_smoothing)
    records = open_records(session, resume, main)
    stopped_because, metrics = None, {}
    while counters.epoch <= config.train.epochs and stopped_because is None:
        # -- one epoch of batches, in an order fixed by (seed, epoch)
        epoch = counters.epoch
        batches = epoch_order(session, epoch)
        run = run_batches(session, stepper, criterion, batches, reporter, clock,
                          stop_requested)  # fmt: skip
        if run.stop:  # save exactly where we are; resume goes on from here
            save_last(session, clock.elapsed())
            stopped_because = INTERRUPTED
            break
        complete = counters.position >= len(batches)
        # -- validate and record (rank 0 validates; every rank follows it)
        metrics = distributed.from_main(
            partial(epoch_metrics, session, epoch, run.tokens_per_s, clock.elapsed)
        )
        records.write(metrics)
        reporter.epoch_end(metrics)
        # -- best so far, learning rate, next epoch; last.pt, best.pt; stop?
        improved = end_epoch(session, metrics, complete, records)
        save_last(session, clock.elapsed(), best=improved)
        stopped_because = stop_reason(config.train, counters, run.out_of_time)

    records.close()
    return TrainResult(run_dir, counters.epoch - 1, counters.best,
                       stopped_because or "epoch limit", metrics,
                       interrupted=stopped_because == INTERRUPTED)  # fmt: skip


def epoch_order(session: Session, epoch: int):
    """The epoch's batches (``data.batches.epoch_batches``): of
    ``train.batch_size`` pairs, or of ``train.batch_tokens`` target tokens."""
    train_cfg = session.config.train
    return epoch_batches(
        session.train_src.lengths, session.train_tgt.lengths,
        train_cfg.batch_size, train_cfg.seed, epoch,
        batch_tokens=train_cfg.batch_tokens,
    )  # fmt: skip


def training_device(config: Config) -> torch.device:
    """``train.device`` on this machine; distributed, the process group is
    started here (NCCL and one GPU a process, by LOCAL_RANK, on CUDA)."""
    device = resolve_device(config.train.device, "train.device")
    distributed.init(device)
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    return device


@dataclass
class Clock:
    """Training time: ``elapsed`` over all invocations of a run (for the
    records), the budget per invocation (``--resume --max-minutes 10``
    trains 10 more)."""

    started: float  # time.monotonic() when this invocation started
    before_s: float  # the run's training time before it
    max_minutes: float | None

    def elapsed(self) -> float:
        return self.before_s + time.monotonic() - self.started

    def out_of_time(self) -> bool:
        budget_s = self.max_minutes * 60 if self.max_minutes else math.inf
        return time.monotonic() - self.started >= budget_s


def end_epoch(session: Session, metrics: dict, complete: bool, records) -> bool:
    """The best metric so far; after a complete epoch also the epochs without
    a better one, the learning rate, the embedding snapshot and the next
    epoch. Returns whether this validation was the best so far."""
    train_cfg, counters = session.config.train, session.counters
    higher_is_better = train_cfg.early_stopping_metric == "bleu"
    watched = metrics["valid_bleu" if higher_is_better else "valid_loss"]
    best = counters.best
    improved = best is None or (watched > best if higher_is_better else watched < best)
    if improved:
        counters.best, counters.bad_epochs = watched, 0
    if complete:
        counters.bad_epochs += 0 if improved else 1
        step_scheduler(session.scheduler, watched)
        every = train_cfg.embedding_snapshot_every
        if every and counters.epoch % every == 0:
            records.write_embeddings(counters.epoch, session.model)
        counters.epoch, counters.position = counters.epoch + 1, 0
        counters.epoch_loss_sum, counters.epoch_tokens = 0.0, 0
    return improved


def stop_reason(train_cfg: TrainConfig, counters: Counters, out_of_time: bool):
    """Why training stops after this validation, or None."""
    if out_of_time:
        return f"time budget ({train_cfg.max_minutes:g} min)"
    if counters.bad_epochs >= train_cfg.patience > 0:
        return f"early stopping: no better in {train_cfg.patience} epochs"
    return None


def open_records(session: Session, resume: bool, main: bool):
    """``metrics.jsonl`` and the embedding snapshots (rank 0 only)."""
    records = MetricsLog(session.run_dir) if main else NoRecords()
    if resume:  # lines a crash left after the checkpoint would come twice
        records.drop_after(session.counters.step)
    else:
        records.write_embeddings(0, session.model)
    return records
