"""One epoch's batches (``run_batches``), the step on one global batch
(``global_step``) and what the loop does around it: skipped steps, mid-epoch
checkpoints (``save_last``), and on a GPU the losses read at log intervals
(``DeviceTally``) instead of after every step.

With ``train.accumulate`` K, one optimiser step takes K consecutive batches
of the epoch; ``counters.position`` counts batches, ``counters.step``
optimiser steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from seqembed.data.batches import collate, rank_share, target_tokens
from seqembed.errors import InputError
from seqembed.nmt import distributed
from seqembed.nmt.checkpoint import save_checkpoint
from seqembed.nmt.session import Session
from seqembed.nmt.steps import train_step

log = logging.getLogger(__name__)

# On a GPU the loss is read (the host waits for the device) every this many
# steps, and at every checkpoint and epoch end.
READ_EVERY = 50


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
    session.last_saved = f"last.pt (epoch {counters.epoch}, batch {counters.position})"


def global_step(session: Session, model, index, criterion):
    """``train_step`` on one global batch (``index``, or a list of K of them
    for ``train.accumulate``), of which this rank trains on its share.
    Returns the loss over the whole global batch, the problem if the step
    was skipped, and the global batch's target tokens."""
    indices = index if index and isinstance(index[0], list) else [index]
    parts = []
    for one in indices:
        share = rank_share(one, distributed.rank(), distributed.world_size())
        # A batch with fewer pairs than ranks: a rank with none still has to
        # take part in the gradient all-reduce, so it runs one pair that
        # counts for 0.
        weight = 1.0 if share else 0.0
        share = share or one[:1]
        batch = collate(
            [session.train_src[i] for i in share],
            [session.train_tgt[i] for i in share],
        )
        parts.append((batch.to(session.device), weight))
    n_tokens = sum(target_tokens(session.train_tgt, one) for one in indices)
    try:
        loss, problem = train_step(
            model, parts, session.optimizer, criterion, session.config,
            n_tokens, scaler=session.scaler,
        )  # fmt: skip
    except torch.OutOfMemoryError as error:
        raise out_of_memory(session, indices, n_tokens) from error
    return loss, problem, n_tokens


def out_of_memory(session: Session, indices, n_tokens: int) -> InputError:
    """The one line for a batch the device had no memory for."""
    train_cfg, counters = session.config.train, session.counters
    pairs = sum(len(one) for one in indices)
    saved = session.last_saved
    kept = f"{saved} is intact" if saved else "no checkpoint had been saved"
    size = (
        f"train.batch_tokens={train_cfg.batch_tokens}"
        if train_cfg.batch_tokens
        else f"train.batch_size={train_cfg.batch_size}"
    )
    return InputError(
        f"out of memory on {session.device} at epoch {counters.epoch}, batch "
        f"{counters.position + 1} ({pairs} pairs, {n_tokens} target tokens, "
        f"{size}); {kept}. Set a smaller train.batch_tokens (with "
        "train.accumulate to keep the effective batch)",
        session.run_dir,
    )


def skip_step(session: Session, problem: str, count: int = 1) -> None:
    """Count ``count`` skipped non-finite steps; too many in a row end training."""
    counters, limit = session.counters, session.config.train.max_nonfinite_steps
    counters.skipped_steps += count
    counters.nonfinite_in_row += count
    where = f"epoch {counters.epoch}, batch {counters.position}"
    log.warning(
        "%s: %s; step skipped, model unchanged (%d in a row, limit %d)",
        where, problem, counters.nonfinite_in_row, limit,
    )  # fmt: skip
    if counters.nonfinite_in_row >= limit:
        saved = session.last_saved
        kept = f"{saved} is intact" if saved else "no checkpoint had been saved"
        raise InputError(
            f"training stopped: {limit} steps in a row had a non-finite loss or "
            f"gradient (last at {where}: {problem}); {kept}. Lower train.lr "
            f"(now {session.config.train.lr:g}) or check the data",
            session.run_dir,
        )


class DeviceTally:
    """A GPU run's losses and skipped steps, summed on the device and read
    (one host synchronisation) by ``read``, every ``READ_EVERY`` steps."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.tokens = torch.zeros((), dtype=torch.float64, device=device)
        self.skipped = torch.zeros((), dtype=torch.int64, device=device)
        self.steps = 0

    def add(self, loss: torch.Tensor, skipped: torch.Tensor, n_tokens: int) -> None:
        kept = (~skipped).double()
        # where(): a skipped step's loss may be inf or nan, and 0 * inf is nan
        self.loss_sum += torch.where(skipped, 0.0, loss.double() * n_tokens)
        self.tokens += kept * n_tokens
        self.skipped += skipped.long()
        self.steps += 1

    def read(self, session: Session) -> tuple[float, int]:
        """Into the counters: the losses and skips since the last read.
        Returns (mean loss, target tokens trained on) of those steps."""
        loss_sum, tokens, skipped = (
            torch.stack([self.loss_sum, self.tokens, self.skipped.double()])
            .tolist()
        )  # fmt: skip
        counters, steps = session.counters, self.steps
        self.loss_sum.zero_(), self.tokens.zero_(), self.skipped.zero_()
        self.steps = 0
        counters.epoch_loss_sum += loss_sum
        counters.epoch_tokens += int(tokens)
        if skipped:
            # which steps of the interval were skipped is not kept: all of
            # them continue the row; fewer end it, and (they may be the
            # interval's last steps) start the next one
            if skipped < steps:
                counters.nonfinite_in_row = 0
            skip_step(session, f"{int(skipped)} of {steps} steps", int(skipped))
        elif steps:
            counters.nonfinite_in_row = 0
        return loss_sum / max(tokens, 1), int(tokens)


@dataclass
class EpochRun:
    stop: bool  # a stop was requested: the epoch is cut short
    out_of_time: bool
    tokens_per_s: float  # target tokens a second


def step_groups(batches, accumulate: int, position: int):
    """The global batches of each optimiser step from ``position`` on: one
    batch each, or a list of ``accumulate`` consecutive ones."""
    for start in range(position, len(batches), accumulate):
        if accumulate == 1:
            yield batches[start], 1
        else:
            group = list(batches[start : start + accumulate])
            yield group, len(group)


def run_batches(
    session: Session, stepper, criterion, batches, reporter, clock,
    stop_requested: Callable[[], bool],
) -> EpochRun:  # fmt: skip
    """The epoch's batches from ``counters.position`` on, up to its end, a
    stop request or the time budget (decided by all ranks together); a
    mid-epoch ``last.pt`` every ``train.checkpoint_every_steps`` steps."""
    counters, train_cfg = session.counters, session.config.train
    stepper.train()  # dropout on; validation switches it off and back
    reporter.epoch_start(
        counters.epoch, train_cfg.epochs, len(batches), counters.position
    )
    on_device = session.device.type != "cpu"
    tally = DeviceTally(session.device) if on_device else None
    shown = None  # on a GPU: the loss of the last read, shown until the next
    tokens, tick = 0, time.monotonic()
    stop, out_of_time = distributed.any_rank(stop_requested(), False)
    groups = step_groups(batches, train_cfg.accumulate, counters.position)
    for index, n_batches in groups:
        if stop or out_of_time:
            break
        loss, problem, n_tokens = global_step(session, stepper, index, criterion)
        counters.position += n_batches
        counters.step += 1
        every = train_cfg.checkpoint_every_steps
        saving = every and counters.step % every == 0
        if tally is not None:
            tally.add(loss, problem, n_tokens)
            if tally.steps >= READ_EVERY or saving or shown is None:
                shown, read = tally.read(session)
                tokens += read
            loss = shown
        elif problem:
            skip_step(session, problem)
        else:
            counters.nonfinite_in_row = 0
            counters.epoch_loss_sum += loss * n_tokens
            counters.epoch_tokens += n_tokens
            tokens += n_tokens
        for _ in range(n_batches):  # the reporter counts batches
            reporter.step(loss, tokens / max(time.monotonic() - tick, 1e-9))
        stop, out_of_time = distributed.any_rank(stop_requested(), clock.out_of_time())
        if saving and not (stop or out_of_time):
            if counters.position < len(batches):  # the epoch end saves
                save_last(session, clock.elapsed())
    if tally is not None and tally.steps:
        tokens += tally.read(session)[1]
    return EpochRun(stop, out_of_time, tokens / max(time.monotonic() - tick, 1e-9))
