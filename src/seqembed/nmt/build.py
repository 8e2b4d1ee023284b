"""The one factory of models: the reference model, with the kernels that
``model.kernels`` asks for (``seqembed.nmt.cpu.kernels.accelerate`` for "auto")."""

from __future__ import annotations

from seqembed.config import ModelConfig
from seqembed.nmt.cpu.kernels import accelerate
from seqembed.nmt.model import Seq2Seq


def build_model(
    config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int
) -> Seq2Seq:
    """``Seq2Seq.from_config``'s model; with ``config.kernels`` "auto" its
    modules are then swapped in place for the fast CPU twins (the same
    parameters and initial values: no random number is drawn)."""
    model = Seq2Seq.from_config(config, src_vocab_size, tgt_vocab_size)
    if config.kernels == "auto":
        accelerate(model)
    return model
