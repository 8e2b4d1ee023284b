"""Batches: bucketing by length, padding, and the teacher-forcing shift.

One batch of B pairs, padded to the longest sentence on each side::

    src      (B, S)   我  爱  自然 语言 处理 <PAD>     src_lengths (B,) = [5, ...]
    tgt_in   (B, T)   <SOS> i  love natural language processing
    tgt_out  (B, T)   i  love natural language processing <EOS>

``tgt_out`` is ``tgt_in`` shifted left by one: at step t the decoder reads
tgt_in[t] and is trained to predict tgt_out[t]. Padding is index 0 and is
ignored by the loss.

The batch order of an epoch is a pure function of (seed, epoch), so training
interrupted mid-epoch can resume at the same batch, and every process of a
distributed run computes the same batches and takes its own share of each
(``rank_share``): what ``DistributedSampler.set_epoch`` does for a sampler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seqembed.data.vocab import EOS, PAD, SOS

# Sort within windows of this many batches (64,000 pairs at 64 a batch): the
# batches then hold pairs of the same source length and nearly the same
# target length. A batch of mixed source lengths costs more than padding:
# PyTorch runs a packed LSTM with unequal lengths step by step in autograd,
# with equal ones as one oneDNN kernel. With 50-batch windows 9 of 60
# Tatoeba batches mixed source lengths, with 1000 1 of 60: training +4%
# (bench/speed.py's config). Pairs of equal lengths still come from all
# over the corpus (the window is shuffled first), in new company each epoch.
BUCKET_WINDOW = 1000


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) source ids, PAD-padded
    src_lengths: torch.Tensor  # (B,) true source lengths, on the CPU
    tgt_in: torch.Tensor  # (B, T) <SOS> + target
    tgt_out: torch.Tensor  # (B, T) target + <EOS>

    @property
    def n_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD).sum())

    @property
    def n_src_tokens(self) -> int:
        return int(self.src_lengths.sum())

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device``; ``src_lengths`` stay on the CPU, where
        ``pack_padded_sequence`` wants them. To a CUDA GPU the tensors go
        from pinned host memory without waiting (``non_blocking``): the copy
        overlaps the work already queued."""
        device = torch.device(device)
        if device.type == "cpu":
            return self
        pin = device.type == "cuda"

        def move(tensor: torch.Tensor) -> torch.Tensor:
            return (tensor.pin_memory() if pin else tensor).to(device, non_blocking=pin)

        return Batch(
            move(self.src), self.src_lengths, move(self.tgt_in), move(self.tgt_out)
        )


def pad(
    sequences: list[list[int]], prefix: int | None = None, suffix: int | None = None
):
    """Stack id lists into a (B, longest) tensor, padded with PAD."""
    extra = (prefix is not None) + (suffix is not None)
    longest = max(len(s) for s in sequences) + extra
    out = torch.full((len(sequences), longest), PAD, dtype=torch.long)
    for row, ids in enumerate(sequences):
        full = ([prefix] if prefix is not None else []) + ids
        full = full + ([suffix] if suffix is not None else [])
        out[row, : len(full)] = torch.tensor(full, dtype=torch.long)
    return out


def collate(src: list[list[int]], tgt: list[list[int]]) -> Batch:
    # An empty source (all its words were unknown or filtered) still needs one
    # step for the packed LSTM, so it is encoded as a lone <EOS>.
    src = [ids if ids else [EOS] for ids in src]
    return Batch(
        src=pad(src),
        src_lengths=torch.tensor([len(ids) for ids in src], dtype=torch.long),
        tgt_in=pad(tgt, prefix=SOS),
        tgt_out=pad(tgt, suffix=EOS),
    )


def epoch_batches(
    src_lengths: list[int],
    tgt_lengths: list[int],
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    batch_tokens: int = 0,
) -> Sequence[list[int]]:
    """Indices of each batch of one epoch, bucketed by length.

    Shuffle all pairs, sort each window of ``BUCKET_WINDOW`` batches by length,
    cut it into batches, then shuffle the batches. Without ``shuffle`` the
    pairs are only sorted by length (for evaluation). With ``batch_tokens``
    a batch is cut where its target tokens (``target_tokens``) would pass
    that many, instead of after ``batch_size`` pairs (``token_batches``).
    """
    if batch_tokens and shuffle:
        return token_batches(src_lengths, tgt_lengths, batch_tokens, seed, epoch)
    # numpy over the lengths (a token cache's arrays, or lists): a corpus of
    # millions of pairs is ordered without a Python object per pair.
    # lexsort is stable, keys last-first: by source length, then target length.
    src_lengths, tgt_lengths = np.asarray(src_lengths), np.asarray(tgt_lengths)
    n = len(src_lengths)
    if not shuffle:
        order = np.lexsort((tgt_lengths, src_lengths))
        return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator).numpy()
    window = batch_size * BUCKET_WINDOW
    for start in range(0, n, window):
        chunk = order[start : start + window]
        chunk[:] = chunk[np.lexsort((tgt_lengths[chunk], src_lengths[chunk]))]
    # A window is a whole number of batches, so batch k of the sorted order
    # starts at k * batch_size; the batches are then shuffled.
    starts = np.arange(0, n, batch_size)
    permutation = torch.randperm(len(starts), generator=generator).numpy()
    return EpochBatches(order, starts[permutation], batch_size)


# Pairs sorted together for token-sized batches: as many as 1,000 batches of
# 64 pairs (BUCKET_WINDOW), whatever the batches' size in tokens.
TOKEN_WINDOW = 64 * BUCKET_WINDOW


def token_batches(
    src_lengths, tgt_lengths, batch_tokens: int, seed: int, epoch: int
) -> Sequence[list[int]]:
    """``epoch_batches`` with batches of at most ``batch_tokens`` target
    tokens (each sentence + <EOS>; a longer pair is a batch of its own):
    shuffle, sort windows of ``TOKEN_WINDOW`` pairs by length, cut each
    window where the next pair would pass ``batch_tokens``, shuffle the
    batches. Short sentences make batches of many pairs, long ones of few,
    so each step has about the same work."""
    src_lengths, tgt_lengths = np.asarray(src_lengths), np.asarray(tgt_lengths)
    n = len(src_lengths)
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=generator).numpy()
    starts, ends = [], []
    for first in range(0, n, TOKEN_WINDOW):
        chunk = order[first : first + TOKEN_WINDOW]
        chunk[:] = chunk[np.lexsort((tgt_lengths[chunk], src_lengths[chunk]))]
        # after[i]: tokens of the window's pairs before i + 1 (the cumulative sum)
        after = np.cumsum(tgt_lengths[chunk] + 1)
        start = 0
        while start < len(chunk):
            before = after[start - 1] if start else 0
            end = int(np.searchsorted(after, before + batch_tokens, side="right"))
            end = max(end, start + 1)
            starts.append(first + start)
            ends.append(first + end)
            start = end
    permutation = torch.randperm(len(starts), generator=generator).numpy()
    starts, ends = np.asarray(starts)[permutation], np.asarray(ends)[permutation]
    return EpochBatches(order, starts, 0, ends)


class EpochBatches(Sequence):
    """``epoch_batches``' batches, each a list of pair indices made when it
    is asked for: the epoch is held as one int64 array of pair indices (8
    bytes a pair), not as a Python int a pair (36 bytes)."""

    def __init__(
        self,
        order: np.ndarray,
        starts: np.ndarray,
        batch_size: int,
        ends: np.ndarray | None = None,
    ):
        self.order, self.starts, self.batch_size = order, starts, batch_size
        self.ends = ends  # token-sized batches: where each one ends

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        start = int(self.starts[k])
        end = int(self.ends[k]) if self.ends is not None else start + self.batch_size
        return self.order[start:end].tolist()

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


def rank_share(batch: list[int], rank: int, world_size: int) -> list[int]:
    """This process's pairs of one global batch: every world_size-th one.

        global batch (sorted by length)   a  b  c  d  e  f  g
        rank 0 of 2                       a     c     e     g
        rank 1 of 2                          b     d     f

    Every rank steps on every global batch, so all ranks make the same number
    of steps and no all-reduce waits for a rank that has run out of batches;
    taking every other pair of a length-sorted batch gives the ranks sentences
    of about the same lengths. A batch with fewer pairs than ranks leaves some
    shares empty (the training step then stands in a pair with weight 0).
    """
    return batch[rank::world_size]


def target_tokens(tgt: list[list[int]], batch: list[int]) -> int:
    """Target tokens of a batch as the loss counts them (each sentence + <EOS>);
    the same as ``collate(...).n_tgt_tokens``, without building the batch."""
    return sum(len(tgt[i]) + 1 for i in batch)
