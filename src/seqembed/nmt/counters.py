"""Where training is: the counters every checkpoint saves."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Counters:
    """Where training is, saved in every checkpoint (as a dict: ``asdict``)."""

    epoch: int = 1
    position: int = 0  # batches of this epoch done
    step: int = 0  # batches done in all (skipped ones too)
    best: float | None = None  # the best validation BLEU (or loss) so far
    bad_epochs: int = 0  # epochs since it was last bettered
    elapsed_s: float = 0.0  # training time of earlier invocations
    # this epoch's loss so far, so that a mid-epoch resume reports the same
    # epoch loss as an uninterrupted run
    epoch_loss_sum: float = 0.0
    epoch_tokens: int = 0
    skipped_steps: int = 0  # non-finite loss or gradient, in all
    nonfinite_in_row: int = 0

    @classmethod
    def from_dict(cls, saved: dict) -> Counters:
        """A checkpoint's counters; one from before a counter existed has
        that counter's start value."""
        names = {spec.name for spec in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})
