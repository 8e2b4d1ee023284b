"""What a long call (train, load_run, analyze) tells an optional callback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("seqembed")


@dataclass(frozen=True)
class Progress:
    """One event of a long call.

    ``stage`` says what is going on: ``"load"`` (reading a checkpoint),
    ``"step"`` (a training batch; ``metrics`` holds its ``epoch``, ``epochs``,
    ``loss`` and ``tgt_tokens_per_s``), ``"epoch"`` (an epoch validated;
    ``metrics`` holds its ``metrics.jsonl`` line) or ``"analysis"`` (one part
    of the analysis starts). ``done`` of ``total`` units of that stage are
    finished (``total`` None when unknown).
    """

    stage: str
    done: int
    total: int | None
    message: str
    metrics: dict | None = None


ProgressCallback = Callable[[Progress], None]


def report(progress: ProgressCallback | None, event: Progress) -> None:
    """Log ``event`` at debug level and hand it to ``progress``, if any."""
    log.debug("%s", event.message)
    if progress is not None:
        progress(event)


class CallbackReporter:
    """The training loop's ``Reporter``, as ``Progress`` events: one per
    batch (``"step"``) and one per validated epoch (``"epoch"``). With no
    callback the epoch's line is logged at info level; a callback shows it
    its own way (the CLI prints it), and the log would say it twice."""

    def __init__(self, progress: ProgressCallback | None):
        self.progress = progress
        self.epoch = self.epochs = self.n_batches = self.done = 0

    def epoch_start(self, epoch: int, epochs: int, n_batches: int, done: int):
        self.epoch, self.epochs, self.n_batches, self.done = (
            epoch,
            epochs,
            n_batches,
            done,
        )

    def step(self, loss: float, tgt_tokens_per_s: float) -> None:
        self.done += 1
        if self.progress is not None:
            message = (
                f"epoch {self.epoch}/{self.epochs}, batch {self.done}/"
                f"{self.n_batches}: loss {loss:.4f}, {tgt_tokens_per_s:,.0f} tgt tok/s"
            )
            numbers = {"epoch": self.epoch, "epochs": self.epochs, "loss": loss,
                       "tgt_tokens_per_s": tgt_tokens_per_s}  # fmt: skip
            self.progress(Progress("step", self.done, self.n_batches, message, numbers))

    def epoch_end(self, metrics: dict) -> None:
        message = epoch_line(metrics, self.epochs)
        if self.progress is None:
            log.info("%s", message)
        else:
            self.progress(
                Progress("epoch", metrics["epoch"], self.epochs, message, metrics)
            )


def epoch_line(m: dict, epochs: int) -> str:
    """One validated epoch as the CLI prints it."""
    return (
        f"epoch {m['epoch']:>3}/{epochs}  train loss {m['train_loss']:.4f}  "
        f"valid loss {m['valid_loss']:.4f}  BLEU {m['valid_bleu']:5.2f}  "
        f"chrF {m['valid_chrf']:5.2f}  lr {m['lr']:.2g}  "
        f"{m['tgt_tokens_per_s']:,.0f} tgt tok/s  {m['elapsed_s']:.0f}s"
    )
