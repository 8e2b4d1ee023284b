"""The one seam for the CPU kernels: ``accelerate(model)``.

``accelerate`` is the seam: ``seqembed.nmt.build.build_model`` calls
it once, when ``model.kernels`` is "auto". It turns the reference model's
modules (``seqembed.nmt.model``) into drop-in twins in place, by changing
their class, as ``torch.nn.utils.parametrize`` does: parameters, their
initial values, state-dict names, hooks and an optimizer's hold on them stay
as they were, no random number is drawn, and the model computes the same
function (within float rounding; the tests of each twin check it):

* ``nn.Dropout`` -> ``dropout.Dropout``: a cheaper random mask (other draws);
* the output projection -> ``onednn.Linear`` (forward through oneDNN), the
  attention's key layer and the combine layer -> ``onednn.Linear`` where
  oneDNN is far ahead of MKL on this CPU (``onednn.onednn_far_ahead``, a
  timing made once per process and thread count: ``kernels: reference``
  never runs it);
* the decoder -> ``decoder.FastDecoder``: the input-feeding recurrence
  (``input_feeding``), ``torch.lstm_cell`` steps in training, and weights
  reordered for oneDNN in decoding.
"""

from __future__ import annotations

from torch import nn

from seqembed.nmt.cpu import onednn
from seqembed.nmt.cpu.decoder import FastDecoder
from seqembed.nmt.cpu.dropout import Dropout
from seqembed.nmt.model import Seq2Seq


def accelerate(model: Seq2Seq) -> Seq2Seq:
    """``model`` itself with the CPU kernels in place (see above)."""
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = Dropout
    decoder = model.decoder
    onednn.Linear.accelerate(decoder.output_projection, everywhere=True)
    if decoder.attention is not None:
        onednn.Linear.accelerate(decoder.combine, everywhere=False)
        key = decoder.attention.key
        if decoder.attention_type == "luong" and key is not None:
            onednn.Linear.accelerate(key, everywhere=False)
    FastDecoder.accelerate(decoder)
    return model
