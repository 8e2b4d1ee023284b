"""Resuming a run: the one rule for what may change (``resume_config``) and
the checkpoint it goes on from (``load_for_resume``).

A resumed run is the run it continues: the same data, vocabularies, model
and optimiser settings, or "resume == no interruption" would not hold. Only
the keys of ``MAY_CHANGE`` may differ; the CLI's ``--resume --set`` and a
library caller's ``train(config, resume=True)`` both go through this rule.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from seqembed.config import SAVED, Config, from_dict, to_dict, validate
from seqembed.errors import InputError
from seqembed.nmt import distributed
from seqembed.nmt.checkpoint import load_checkpoint, load_latest_checkpoint

log = logging.getLogger(__name__)

# The epoch limit, this invocation's time budget, the precision (a bf16
# run resumed on a CPU without bf16) and the device (a GPU run resumed on a
# CPU and the other way round: checkpoints are device-free).
MAY_CHANGE = (
    "train.epochs",
    "train.max_minutes",
    "train.precision",
    "train.device",
    "train.deterministic",
    "decode.device",
)


def resume_config(saved: Config, given: Config, run_dir: Path | None = None) -> Config:
    """The run's own config (``saved``) with the keys of ``MAY_CHANGE`` taken
    from ``given`` (and checked against their ranges); any other key where
    ``given`` differs is refused, in one line that names it."""
    ours, theirs = _flat(saved), _flat(given)
    differ = [k for k in theirs if theirs[k] != ours[k] and k not in MAY_CHANGE]
    if differ:
        key, more = differ[0], differ[1:]
        also = f"; so do {', '.join(more)}" if more else ""
        raise InputError(
            f"a resumed run keeps its settings: {key} is {theirs[key]!r} here but "
            f"{ours[key]!r} in the run{also} (only {', '.join(MAY_CHANGE)} may "
            "change on resume)",
            run_dir,
        )
    merged = to_dict(saved)
    for dotted in MAY_CHANGE:
        section, key = dotted.split(".")
        merged[section][key] = theirs[dotted]
    config = from_dict(merged, SAVED)
    validate(config, "config", kept=saved)  # the run's own values as they were
    return config


def resume_user_dict(
    checkpoint: dict, given: str | None, run_dir: Path | None = None
) -> str | None:
    """The run's user dictionary (its text is in the checkpoint); one given
    again must be the same text."""
    saved = checkpoint.get("user_dict")
    if given is not None and given != saved:
        raise InputError(
            "a resumed run keeps its settings: the user dictionary given differs "
            "from the run's (its text is in the checkpoint; leave it out)",
            run_dir,
        )
    return saved


def _flat(config: Config) -> dict[str, Any]:
    return {
        f"{section}.{key}": value
        for section, values in to_dict(config).items()
        for key, value in values.items()
    }


def load_for_resume(run_dir: Path) -> tuple[dict, Path]:
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
