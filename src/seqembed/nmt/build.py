"""The one factory of models: the reference model, with the kernels that
``model.kernels`` asks for (``seqembed.nmt.cpu.kernels.accelerate`` for
"auto", on the CPU only), on the device it will run on."""

from __future__ import annotations

import torch

from seqembed.config import ModelConfig
from seqembed.nmt.cpu.kernels import accelerate
from seqembed.nmt.model import Seq2Seq


def build_model(
    config: ModelConfig,
    src_vocab_size: int,
    tgt_vocab_size: int,
    device: torch.device | str = "cpu",
) -> Seq2Seq:
    """``Seq2Seq.from_config``'s model on ``device``; with ``config.kernels``
    "auto" and the CPU, its modules are swapped in place for the fast CPU
    twins (the same parameters and initial values: no random number is
    drawn). Another device gets the reference model: the twins call oneDNN
    and MKL, which only run on the CPU.

    The parameters are drawn on the CPU and then moved, so a seed gives the
    same initial model on every device."""
    model = Seq2Seq.from_config(config, src_vocab_size, tgt_vocab_size)
    device = torch.device(device)
    if device.type != "cpu":
        return model.to(device)
    if config.kernels == "auto":
        accelerate(model)
    return model
