"""Distributed training: torchrun's environment and the few collectives the
loop needs. In one process every function here is a no-op (or returns its
argument), so training runs the same code path with or without torchrun.

torchrun starts N copies of ``seqembed train`` and tells each, in its
environment, who it is::

    RANK          0 .. WORLD_SIZE-1, over all machines   (rank 0 writes files)
    WORLD_SIZE    number of processes in all
    LOCAL_RANK    number of this process on its machine
    MASTER_ADDR   where the c10d store that the processes meet at listens
    MASTER_PORT

Gradients are averaged by ``DistributedDataParallel`` (``wrap``); the helpers
below only carry small decisions: stop flags, loss sums, rank 0's metrics.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from seqembed.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

# A collective waits this long for the other ranks before it raises. Rank 0
# validates (greedy decoding of up to train.valid_bleu_max sentences) and
# saves checkpoints while the others wait, so this must be far longer than
# that; torchrun ends all ranks at once when one of them exits, and a peer
# whose connection closes is noticed at once, so it is only the last resort
# against a process that hangs.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Environment:
    """What torchrun tells a process about the job (one process: 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master: str | None = None  # "MASTER_ADDR:MASTER_PORT"

    @classmethod
    def read(cls, environ=os.environ) -> Environment:
        if "WORLD_SIZE" not in environ:
            return cls()
        try:
            rank, world_size = int(environ["RANK"]), int(environ["WORLD_SIZE"])
            local_rank = int(environ.get("LOCAL_RANK", 0))
        except (KeyError, ValueError) as error:
            raise InputError(
                f"WORLD_SIZE is set but RANK/LOCAL_RANK are not usable ({error}); "
                "start distributed training with torchrun or seqembed train --nproc"
            ) from None
        master = None
        if "MASTER_ADDR" in environ:
            master = f"{environ['MASTER_ADDR']}:{environ.get('MASTER_PORT', '')}"
        return cls(rank, world_size, local_rank, master)


def init(device: torch.device | str = "cpu") -> None:
    """Join the process group torchrun set up: gloo for CPU tensors (seqembed
    trains on the CPU), nccl for CUDA ones. Nothing in one process, or when
    already joined."""
    env = Environment.read()
    if env.world_size == 1 or is_initialized():
        return
    if not torch.distributed.is_available():
        raise InputError("this torch build has no torch.distributed")
    backend = "gloo"
    if torch.device(device).type == "cuda":  # one GPU per process, by LOCAL_RANK
        backend = "nccl"
        torch.cuda.set_device(env.local_rank)
    torch.distributed.init_process_group(backend, timeout=TIMEOUT)
    if env.rank == 0:
        log.info(
            "distributed: %d processes (%s), rendezvous %s",
            env.world_size, backend, env.master,
        )  # fmt: skip


def shutdown() -> None:
    if is_initialized():
        torch.distributed.destroy_process_group()


@contextlib.contextmanager
def process_group(device: torch.device | str = "cpu") -> Iterator[None]:
    """``init`` on entry, ``shutdown`` on the way out."""
    init(device)
    try:
        yield
    finally:
        shutdown()


def is_initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if is_initialized() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the process that writes files and talks to the user."""
    return rank() == 0


# ---------------------------------------------------------------- collectives


def barrier() -> None:
    if world_size() > 1:
        torch.distributed.barrier()


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum over ranks (a new tensor); ``value`` itself in one process."""
    if world_size() == 1:
        return value
    total = value.detach().clone()
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return total


def any_rank(*flags: bool) -> tuple[bool, ...]:
    """Each flag, true if it is true on any rank: one decision all follow
    (a stop request, the end of the time budget)."""
    if world_size() == 1:
        return tuple(bool(f) for f in flags)
    # NCCL reduces tensors on this rank's GPU only; gloo, CPU ones
    nccl = torch.distributed.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
    votes = torch.tensor(
        [int(bool(f)) for f in flags], dtype=torch.int32, device=device
    )
    torch.distributed.all_reduce(votes, op=torch.distributed.ReduceOp.MAX)
    return tuple(bool(v) for v in votes.tolist())


def from_main(compute: Callable[[], T]) -> T:
    """``compute()`` run on rank 0 only, its result given to every rank: a
    value decided once (validation metrics, the checkpoint to resume from)."""
    if world_size() == 1:
        return compute()
    box = [compute() if is_main() else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_main(value: Any) -> list[Any] | None:
    """Every rank's ``value`` as a list on rank 0 (None elsewhere)."""
    if world_size() == 1:
        return [value]
    gathered = [None] * world_size() if is_main() else None
    torch.distributed.gather_object(value, gathered, dst=0)
    return gathered


def wrap(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel`` around ``model``: the backward pass averages
    the gradients over ranks. In one process, ``model`` itself."""
    if world_size() == 1:
        return model
    return nn.parallel.DistributedDataParallel(model)


# ---------------------------------------------------------------- errors


@contextlib.contextmanager
def rank_errors() -> Iterator[None]:
    """Errors as the CLI shows them, labelled with the rank that saw them.

    Every rank usually meets the same problem (they read the same files), so
    each says so; rank 0 unlabelled, the others as ``rank 1 of 2: ...``. A
    collective that fails because another rank is gone is one line too."""
    try:
        yield
    except InputError as error:
        if is_main() or world_size() == 1:
            raise
        raise InputError(f"{_label()}{error}") from error
    except OSError as error:
        if is_main() or world_size() == 1:
            raise
        where = f"{error.filename}: " if error.filename else ""
        raise InputError(f"{_label()}{where}{error.strerror or error}") from error
    except RuntimeError as error:
        if world_size() == 1 or not _peer_lost(error):
            raise
        raise InputError(
            f"{_label()}another process of this training stopped; its own "
            "message says why (--debug shows this one's traceback)"
        ) from error


def _label() -> str:
    return f"rank {rank()} of {world_size()}: " if rank() else ""


def _peer_lost(error: RuntimeError) -> bool:
    """A collective that failed because another rank exited or hung."""
    dist_error = getattr(torch.distributed, "DistError", ())
    text = str(error).lower()
    return isinstance(error, dist_error) or any(
        words in text
        for words in ("connection closed by peer", "connection reset", "timed out")
    )


# ---------------------------------------------------------------- launching


def launch(nproc: int, argv: list[str]) -> int:
    """``seqembed ARGV`` in ``nproc`` processes on this machine, started by
    torchrun's own launcher (``torch.distributed.run``) in this process.

    Returns the exit status of the first process that failed (2 for a
    one-line error), 130 when stopped by Ctrl-C, else 0. torchrun passes a
    Ctrl-C on to the processes, which save ``last.pt`` and stop; one process
    that fails makes torchrun end the others."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # A share of the cores each, instead of torchrun's default of 1 thread.
    threads = max(1, (os.cpu_count() or 1) // nproc)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    # The processes say what went wrong themselves; torchrun's agent would
    # add its own report (and a traceback) to each line of theirs.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("torch.distributed") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--module", "seqembed", *argv]
    )
    try:
        run(args)
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        if failure.exitcode > 0:
            return failure.exitcode  # 2: the process printed its one-line error
        log.error("rank %d was killed by %s", rank, failure.signal_name())
        return 128 - failure.exitcode  # as a shell reports a signal
    except SignalException:
        return 130  # Ctrl-C: the processes saved last.pt and said so
    return 0
