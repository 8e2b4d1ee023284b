"""Whether a model fits in this machine's memory, asked before it is built:
a model too large is a one-line error naming the settings, not an
allocation failure (or the OOM killer) inside torch."""

from __future__ import annotations

import torch

from seqembed.config import Config
from seqembed.errors import InputError
from seqembed.nmt.model import Seq2Seq


def check_memory(config: Config, n_src: int, n_tgt: int) -> None:
    """Refuse a model whose parameters do not fit in the memory available.
    Counted on the meta device (shapes, no memory); a parameter takes 16
    bytes at least, with its gradient and Adam's two moments."""
    try:
        with torch.device("meta"):
            model = Seq2Seq.from_config(config.model, n_src, n_tgt)
    except (NotImplementedError, RuntimeError):  # a layer meta cannot build
        return
    n_params = sum(p.numel() for p in model.parameters())
    need, free = 16 * n_params, available_memory()
    if free is not None and need > free:
        settings = config.model
        raise InputError(
            f"the model would have {n_params:,} parameters, {need / 2**30:.1f} GiB "
            f"with their gradients and Adam's state, more than the "
            f"{free / 2**30:.1f} GiB of memory available: lower model.hidden_size "
            f"({settings.hidden_size}), model.emb_size ({settings.emb_size}), "
            f"model.num_layers ({settings.num_layers}) or vocab.max_size"
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable),
    or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
