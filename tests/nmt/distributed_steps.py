"""A few training steps on the built-in corpus, the way ``train`` takes them,
with every rank's gradients and parameters written out for the tests to
compare. Run under torchrun (``python -m torch.distributed.run
--nproc_per_node=2 tests/distributed_steps.py OUT``) or in one process
(``run_steps(OUT)``): OUT/rank-R-of-N.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from seqembed.cli.demo import builtin_pairs, demo_config
from seqembed.data.batches import epoch_batches
from seqembed.data.vocab import PAD
from seqembed.nmt import distributed
from seqembed.nmt.training import global_step, start_session

# No dropout: two processes draw other masks than one. Batches of 16.
# Characters, not jieba (see TINY in test_distributed.py).
SETTINGS = ["model.emb_size=16", "model.hidden_size=32", "model.dropout=0",
            "train.batch_size=16", "train.lr=0.003",
            "data.src_segmentation=char"]  # fmt: skip
STEPS = 6


def run_steps(out: Path) -> Path:
    distributed.init()
    config = demo_config(seed_example=False, seed=5, extra=SETTINGS)
    rank, world_size = distributed.rank(), distributed.world_size()
    run_dir = out / f"run-{world_size}"
    session = start_session(config, run_dir, builtin_pairs(), False, None)
    model = distributed.wrap(session.model)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    lengths = [len(s) for s in session.train_src], [len(t) for t in session.train_tgt]
    batches = epoch_batches(*lengths, config.train.batch_size, config.train.seed, 1)
    # The third global batch holds a single pair: rank 1's share is empty.
    batches = batches[:2] + [batches[2][:1]] + batches[3:STEPS]
    first_gradients, losses = None, []
    for index in batches:
        loss, problem, _ = global_step(session, model, index, criterion)
        assert problem is None, problem
        losses.append(loss)
        if first_gradients is None:  # p.grad stays until the next step
            first_gradients = {
                name: p.grad.clone() for name, p in session.model.named_parameters()
            }
    path = out / f"rank-{rank}-of-{world_size}.pt"
    torch.save(
        {
            "first_gradients": first_gradients,
            "model": session.model.state_dict(),
            "adam": session.optimizer.state_dict()["state"],
            "losses": losses,
        },
        path,
    )
    distributed.shutdown()
    return path


if __name__ == "__main__":
    run_steps(Path(sys.argv[1]))
