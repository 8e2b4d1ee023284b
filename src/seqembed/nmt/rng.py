"""Random states: saved in a checkpoint, restored on resume, one stream per
rank of a distributed run.

Training draws random numbers for dropout masks (torch) and scheduled
sampling (Python's ``random``). Every rank starts from the same seed, so that
all build the same initial model; then ranks above 0 switch to streams of
their own (``seed_rank``), so that they do not draw the same masks for
different sentences. Rank 0 keeps the stream of a one-process run.
"""

from __future__ import annotations

import logging
import random

import torch

from seqembed.nmt import distributed

log = logging.getLogger(__name__)


def rng_state() -> dict:
    """The CPU's and Python's random states, and each CUDA device's where
    CUDA is in use (GPU dropout masks come from those). They are CPU byte
    tensors: a checkpoint written on a GPU loads anywhere."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """``rng_state``'s states back; a checkpoint's CUDA states where this
    machine has as many CUDA devices (a GPU run resumed on a CPU only has
    no use for them)."""
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def seed_rank(seed: int, rank: int, step: int = 0) -> None:
    """Random streams of their own for ranks above 0 (dropout masks,
    scheduled sampling); rank 0 keeps the stream of a one-process run."""
    random.seed(f"seqembed {seed} rank {rank} step {step}")
    torch.manual_seed(random.getrandbits(63))


def restore_rng(checkpoint: dict) -> None:
    """This rank's RNG states from a checkpoint. A checkpoint of a run with
    as many processes holds every rank's; with another number of processes,
    rank 0 takes rank 0's and the others start new streams: the run goes on,
    but not bitwise as it would have."""
    saved = checkpoint.get("rng_ranks") or [checkpoint["rng"]]
    rank, world_size = distributed.rank(), distributed.world_size()
    if rank == 0 or len(saved) == world_size:
        set_rng_state(saved[rank])
    else:
        seed = checkpoint["config"]["train"]["seed"]
        seed_rank(seed, rank, checkpoint["counters"]["step"])
    if len(saved) != world_size and distributed.is_main():
        log.warning(
            "the checkpoint was saved by %d process(es), this run has %d: it "
            "goes on, but ranks above 0 draw new random numbers",
            len(saved), world_size,
        )  # fmt: skip


def _as_tuple(value):
    return (
        tuple(_as_tuple(v) for v in value)
        if isinstance(value, (list, tuple))
        else value
    )
