"""The step loops of a recurrence, run in parts side by side.

The sentences of a batch are independent of each other through a
recurrence: with T threads, its step loops can run as T parts, each on its
own thread with every T-th sentence, instead of one loop whose products are
split over the threads at every step (input_feeding.py says why that is
faster on a CPU). A part's positions are kept together ("part-major": the
parts one after the other, each packed time-major like the batch), so that
each loop reads and writes contiguous rows; ``part_major_order`` and
``in_packed_order`` go between the two layouts, ``by_sentence`` puts the
parts' per-sentence results back in batch order.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from seqembed.nmt.cpu.products import Products


@dataclass
class Part:
    """The sentences one thread runs the step loops of: every ``stride``-th
    sentence of the batch from ``first``, so that with the batch sorted by
    length each part holds sentences of every length and the parts take
    about as long. Its positions are rows ``rows`` of the saved buffers:
    the parts' positions one part after the other, each packed time-major
    like the batch ("part-major", ``part_major_order``)."""

    first: int
    stride: int
    batch_sizes: list[int]  # its sentences still going at each step
    rows: slice

    @classmethod
    def split(cls, batch_sizes: list[int], threads: int) -> list[Part]:
        """As many parts as threads, but none under ``MIN_SENTENCES``
        sentences (a product of fewer rows gains less from its own thread
        than it loses to the threads' hand-over)."""
        count = max(1, min(threads, batch_sizes[0] // MIN_SENTENCES))
        parts, start = [], 0
        for first in range(count):
            sizes = [-(-(n - first) // count) for n in batch_sizes if n > first]
            parts.append(cls(first, count, sizes, slice(start, start + sum(sizes))))
            start += sum(sizes)
        return parts

    def sentences_of(self, batch_rows: torch.Tensor) -> torch.Tensor:
        """This part's rows of a (B, ...) tensor, contiguous."""
        return batch_rows[self.first :: self.stride].contiguous()


# Fewest sentences a part of the step loops runs (Part.split). On 2 Zen 4
# cores, two parts of 32 against one of 64 on both threads, the same batches
# in one process: training steps of the matched config (bench/speed.py)
# 1.04x faster at seqembed's short spin (1.05x restricted to AVX2), 1.00x
# with OMP_WAIT_POLICY=PASSIVE.
MIN_SENTENCES = 16


def part_major_order(parts: list[Part], batch_sizes: list[int]):
    """For each row of the part-major layout (Part), the packed row it is;
    None for one part (the two are the same)."""
    if len(parts) == 1:
        return None
    starts = [0]
    for n in batch_sizes[:-1]:
        starts.append(starts[-1] + n)
    return torch.cat([
        torch.arange(start + part.first, start + n, part.stride)
        for part in parts
        for start, n in zip(starts, batch_sizes)
        if n > part.first
    ])  # fmt: skip


def in_packed_order(part_major: torch.Tensor, order) -> torch.Tensor:
    """Rows in the part-major layout (Part) back in the packed order."""
    if order is None:
        return part_major
    return torch.empty_like(part_major).index_copy_(0, order, part_major)


def by_sentence(per_part: list[torch.Tensor], parts: list[Part]):
    """The parts' (B_p, ...) tensors as one (B, ...), in batch order."""
    if len(parts) == 1:
        return per_part[0].contiguous()
    whole = per_part[0].new_empty(
        (sum(t.size(0) for t in per_part), *per_part[0].shape[1:])
    )
    for part, tensor in zip(parts, per_part):
        whole[part.first :: part.stride] = tensor
    return whole


def on_threads(work, parts: list[Part], products: Products) -> list:
    """``work(part)`` for every part, each on its own thread (the first on
    this one), with the small operations on one OpenMP thread and the
    products on ``products.step_threads``; the results in the parts' order."""
    if len(parts) == 1:
        with products.one_thread():
            return [work(parts[0])]
    pool = _workers(len(parts) - 1)
    pending = [pool.submit(_in_worker, work, part, products) for part in parts[1:]]
    try:
        with products.one_thread():
            first = work(parts[0])
    finally:  # a failure here still waits for the other parts
        rest = [future.result() for future in pending]
    return [first, *rest]


def _in_worker(work, part: Part, products: Products):
    # grad mode and autocast are per thread: off here, as in the caller
    # (a custom autograd Function's forward and backward)
    with torch.no_grad(), products.one_thread():
        return work(part)


def _workers(count: int) -> ThreadPoolExecutor:
    """Threads kept for the parts of the step loops (starting one per call
    would cost ~0.1 ms; these sleep between batches), per process: a forked
    child (a DataLoader worker) inherits the pool but not its threads."""
    return _process_workers(os.getpid(), count)


@functools.cache
def _process_workers(pid: int, count: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(count, thread_name_prefix="seqembed-recurrence")
