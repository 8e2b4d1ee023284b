"""The parts of a recurrence's step loops (one thread each): how a batch
and its packed positions are split and put back, and a failure on a worker
thread. That the recurrence in parts computes what the step loop does is
tests/nmt/cpu/test_input_feeding.py's."""

import pytest
import torch

from seqembed.nmt.cpu.parts import MIN_SENTENCES, Part, on_threads, part_major_order
from seqembed.nmt.cpu.products import Products


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_parts_split_the_batch_and_its_positions(threads):
    # lengths sorted longest first, as the packed batch is; 9 steps
    lengths = sorted([9, 9, 8, 7, 7, 7, 5, 3, 3, 2, 1] * 4, reverse=True)
    sizes = [sum(n > t for n in lengths) for t in range(lengths[0])]
    parts = Part.split(sizes, threads)
    assert len(parts) == min(threads, len(lengths) // MIN_SENTENCES)
    # every sentence in exactly one part, each part's lengths from its sizes
    sentences = sorted(s for p in parts for s in range(p.first, 44, p.stride))
    assert sentences == list(range(44))
    for part in parts:
        mine = lengths[part.first :: part.stride]
        assert part.batch_sizes == [sum(n > t for n in mine) for t in range(mine[0])]
    # the parts' rows follow each other and cover every packed position once
    assert [p.rows.start for p in parts] == [0, *(p.rows.stop for p in parts[:-1])]
    assert parts[-1].rows.stop == sum(sizes)
    order = part_major_order(parts, sizes)
    if len(parts) == 1:
        assert order is None
    else:
        assert sorted(order.tolist()) == list(range(sum(sizes)))
        # a part's rows at step t are its sentences' positions at step t
        starts = [sum(sizes[:t]) for t in range(len(sizes))]
        part = parts[1]
        first_step = order[part.rows][: part.batch_sizes[0]].tolist()
        assert first_step == list(range(part.first, sizes[0], part.stride))
        second = order[part.rows][part.batch_sizes[0] :][: part.batch_sizes[1]]
        assert second.tolist() == list(
            range(starts[1] + part.first, starts[1] + sizes[1], part.stride)
        )


def test_a_failure_in_a_part_reaches_the_caller():
    """An error on a worker thread is raised in the caller, after every
    part has finished, and the thread count is given back."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sizes = [40] * 3
        parts = Part.split(sizes, 2)
        products = Products(torch.ones(8, 4), torch.ones(2, 4), 20, None, 1)
        finished = []

        def work(part):
            finished.append(part.first)
            if part.first == 1:
                raise KeyError("on the worker")
            return torch.get_num_threads()

        with pytest.raises(KeyError, match="on the worker"):
            on_threads(work, parts, products)
        assert sorted(finished) == [0, 1]
        assert on_threads(lambda part: 7, parts[:1], products) == [7]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
