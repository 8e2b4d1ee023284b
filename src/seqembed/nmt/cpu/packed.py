"""Operations over the positions of a packed, time-major batch (step 0's
sentences, then step 1's, ..., the batch sorted by length, longest first),
for the input-feeding recurrence's backward pass (input_feeding.py)."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence


def summed_over_steps(weights, values, batch_sizes: list[int]) -> torch.Tensor:
    """For each sentence b, the sum over its steps t of the outer product
    weights[t, b] (S) x values[t, b] (H): (B, S, H) from the packed (N, S)
    and (N, H). One batched product after the loop, instead of adding a
    (B, S, H) outer product at every step (two passes over B x S x H numbers
    a step, for memory's gradient and for the keys')."""
    weights = time_major(weights, batch_sizes)  # (steps, B, S)
    values = time_major(values, batch_sizes)  # (steps, B, H)
    return torch.bmm(weights.permute(1, 2, 0), values.transpose(0, 1))


def time_major(packed: torch.Tensor, batch_sizes: list[int]) -> torch.Tensor:
    """Packed rows (N, D) as (steps, B, D), zeros where a sentence has ended;
    a view when every sentence runs every step."""
    steps, batch = len(batch_sizes), batch_sizes[0]
    if all(n == batch for n in batch_sizes):
        return packed.unflatten(0, (steps, batch))
    sizes = torch.tensor(batch_sizes)
    return pad_packed_sequence(PackedSequence(packed, sizes))[0]


def cells_before(c0, cells, batch_sizes: list[int]):
    """c_{t-1} for every position (N, H): c0 for step 0, else the cell of the
    same sentence at the previous step (the first rows of that step's)."""
    pieces, start = [c0[: batch_sizes[0]]], 0
    for before, n in zip(batch_sizes, batch_sizes[1:]):
        pieces.append(cells[start : start + n])
        start += before
    return torch.cat(pieces)
