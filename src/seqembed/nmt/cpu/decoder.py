"""The decoder with the CPU kernels: ``model.Decoder``'s function, faster.

``FastDecoder`` is a ``Decoder`` (same parameters, state dict and hooks)
that overrides three of its methods, each where a fast path applies and
falling back to the reference method elsewhere:

* ``real_logits``: teacher-forced training with input feeding and one LSTM
  layer runs the hand-written recurrence (``InputFeedingRecurrence``) over
  the real target positions only;
* ``lstm_step``: with gradients on, one step is ``torch.lstm_cell`` per
  layer, 16% faster than a length-1 ``nn.LSTM`` in training (forward and
  backward) with input feeding, measured by bench/speed.py;
* ``step``: translating in float32 on a CPU, the decoder's weights are
  reordered once for oneDNN (``DecodingWeights``): every step multiplies
  the same weights with a few hundred rows (sentences x beam), 1.3-1.8x
  faster than torch.mm on a Zen 4 CPU.

Decoding code only calls ``Seq2Seq.encode`` and ``step``: the reordered
weights are made at the first step and kept while the parameters stay the
same (checked at the first step after each ``encode``, ``_weights_key``),
since making them costs as much as tens of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence
from torch.optim.optimizer import register_optimizer_step_post_hook

from seqembed.data.vocab import PAD
from seqembed.nmt.cpu import onednn
from seqembed.nmt.cpu.input_feeding import InputFeedingRecurrence
from seqembed.nmt.model import Decoder, DecoderState, EncodedSource


@dataclass
class DecodingWeights:
    """The decoder's weights reordered once for oneDNN (onednn.py)."""

    word_gates: torch.Tensor  # (V, 4H) W_ih[:, :emb] @ embedding + biases
    lstm: list[tuple[torch.Tensor, torch.Tensor | None]]  # weight, bias a layer
    combine: torch.Tensor | None
    output: torch.Tensor


class FastDecoder(Decoder):
    """``Decoder`` with the CPU kernels; made from one by ``accelerate``."""

    _decoding: tuple[tuple, DecodingWeights] | None = None  # key, weights
    _checked = False  # _decoding's key checked since the last initial_state

    @classmethod
    def accelerate(cls, decoder: Decoder) -> FastDecoder:
        """``decoder`` itself, now a FastDecoder: nothing is copied or drawn."""
        decoder.__class__ = cls
        return decoder

    def train(self, mode: bool = True):
        if mode:  # training does not use the reordered weights: free them
            self._decoding = None
        return super().train(mode)

    def initial_state(self, encoder_state, batch_size: int) -> DecoderState:
        # A decoding starts (Seq2Seq.encode): its first step checks that the
        # parameters are still those the reordered weights were made from.
        self._checked = False
        return super().initial_state(encoder_state, batch_size)

    def real_logits(self, tgt_in, tgt_out, state: DecoderState, source):
        """``Decoder.real_logits`` through ``InputFeedingRecurrence`` where it
        applies; the positions come packed time-major, the batch sorted by
        target length."""
        if not self.fast_input_feeding:
            return super().real_logits(tgt_in, tgt_out, state, source)
        lengths = (tgt_out != PAD).sum(dim=1).cpu()
        packed = pack_padded_sequence(
            tgt_in, lengths, batch_first=True, enforce_sorted=False
        )
        targets = pack_padded_sequence(
            tgt_out, lengths, batch_first=True, enforce_sorted=False
        ).data
        order, device = packed.sorted_indices, tgt_in.device.type
        embedded = self.dropout(self.embedding(packed.data))  # (N, emb)
        lstm = self.lstm
        h, c, _ = state
        outputs = InputFeedingRecurrence.apply(
            embedded,
            h[0].index_select(0, order),
            c[0].index_select(0, order),
            source.keys.index_select(0, order),
            source.memory.index_select(0, order),
            source.src_mask.index_select(0, order),
            lstm.weight_ih_l0,
            lstm.weight_hh_l0,
            lstm.bias_ih_l0 + lstm.bias_hh_l0,
            self.combine.weight,
            packed.batch_sizes.tolist(),
            # bf16 autocast: the recurrence's matrix products in bf16 too
            torch.get_autocast_dtype(device)
            if torch.is_autocast_enabled(device)
            else None,
        )
        return self.project(outputs), targets

    @property
    def fast_input_feeding(self) -> bool:
        """True when teacher-forced training can use ``InputFeedingRecurrence``
        (one LSTM layer)."""
        return self.input_feed and self.lstm.num_layers == 1

    def lstm_step(self, x, h, c):
        """``Decoder.lstm_step`` with its own weights through
        ``torch.lstm_cell`` when gradients are on; without them the fused
        nn.LSTM kernel wins (bf16 decoding, another device)."""
        if not torch.is_grad_enabled():
            return super().lstm_step(x, h, c)
        lstm, new_h, new_c = self.lstm, [], []
        for layer in range(lstm.num_layers):
            if layer > 0:
                x = F.dropout(x, lstm.dropout, self.training)
            h_l, c_l = torch.lstm_cell(
                x,
                (h[layer], c[layer]),
                getattr(lstm, f"weight_ih_l{layer}"),
                getattr(lstm, f"weight_hh_l{layer}"),
                getattr(lstm, f"bias_ih_l{layer}"),
                getattr(lstm, f"bias_hh_l{layer}"),
            )
            new_h.append(h_l)
            new_c.append(c_l)
            x = h_l
        return x, (torch.stack(new_h), torch.stack(new_c))

    def step(self, tokens, state: DecoderState, source: EncodedSource):
        """``Decoder.step``, through ``DecodingWeights`` where they apply
        (same results within float rounding)."""
        packed = self.decoding_weights()
        if packed is None:
            return super().step(tokens, state, source)
        return packed_step(self, tokens, state, source, packed)

    def decoding_weights(self) -> DecodingWeights | None:
        """The weights ``step`` uses, or None where oneDNN does not apply:
        training, gradients on, bf16 autocast, another dtype or device."""
        if (
            self.training
            or torch.is_grad_enabled()
            or not onednn.applies(self.output_projection.weight)
        ):
            return None
        if self._decoding is None or not self._checked:
            key = _weights_key(self)
            if self._decoding is None or self._decoding[0] != key:
                self._decoding = None  # the old ones freed before the new are made
                self._decoding = key, _make_decoding_weights(self)
            self._checked = True
        return self._decoding[1]


_optimizer_steps = 0  # optimizer steps taken in this process, once counted


def _count_step(optimizer, args, kwargs) -> None:
    global _optimizer_steps
    _optimizer_steps += 1


_counting = None  # the hook's handle, registered by the first _weights_key


def _weights_key(decoder: Decoder) -> tuple:
    """What says the parameters are still those the reordered weights were
    made from: each one's storage and version counter (in-place changes and
    load_state_dict bump it), and the number of optimizer steps taken, since
    a fused optimizer updates parameters without bumping their versions."""
    global _counting
    if _counting is None:
        _counting = register_optimizer_step_post_hook(_count_step)
    lstm, projection = decoder.lstm, decoder.output_projection
    sources = [decoder.embedding.weight, projection.weight, projection.bias]
    for layer in range(lstm.num_layers):
        sources += [getattr(lstm, f"{name}_l{layer}") for name in _LSTM_PARAMETERS]
    if decoder.attention is not None:
        sources.append(decoder.combine.weight)
    return _optimizer_steps, tuple((p.data_ptr(), p._version) for p in sources)


_LSTM_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _make_decoding_weights(decoder: Decoder) -> DecodingWeights:
    rows = 256  # oneDNN's layout hint; products of any row count work
    lstm, layers, emb = decoder.lstm, [], decoder.embedding.embedding_dim
    word_gates = None
    for layer in range(lstm.num_layers):
        weight_ih = getattr(lstm, f"weight_ih_l{layer}")
        weight_hh = getattr(lstm, f"weight_hh_l{layer}")
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        if layer == 0:
            # The word's share of the first layer's gates, one row per
            # target word: looked up, not multiplied, at every step.
            word_gates = F.linear(decoder.embedding.weight, weight_ih[:, :emb], bias)
            weight, bias = torch.cat([weight_ih[:, emb:], weight_hh], dim=1), None
        else:
            weight = torch.cat([weight_ih, weight_hh], dim=1)
        layers.append((onednn.reorder(weight, rows), bias))
    combine = None
    if decoder.attention is not None:
        combine = onednn.reorder(decoder.combine.weight, rows)
    output = onednn.reorder(decoder.output_projection.weight, rows)
    return DecodingWeights(word_gates, layers, combine, output)


def packed_step(decoder: Decoder, tokens, state, source, packed: DecodingWeights):
    """``Decoder.step`` in eval mode with ``DecodingWeights``; the same
    equations (see Decoder), the combine layer's tanh inside its product."""
    h, c, feed = state
    weights = None
    extra = None  # what joins the word embedding in the LSTM's input
    if decoder.attention_type == "bahdanau":
        query = h[-1].unsqueeze(1)  # (B, 1, H): the state before this step
        context, weights = decoder.attention(
            query, source.keys, source.memory, source.src_mask
        )
        extra = context.squeeze(1)
    elif decoder.input_feed:
        extra = feed
    output, (h, c) = _packed_lstm_step(tokens, extra, h, c, packed)  # (B, H)
    if decoder.attention_type == "luong":
        context, weights = decoder.attention(
            output.unsqueeze(1), source.keys, source.memory, source.src_mask
        )
    if decoder.attention is not None:
        joined = torch.cat([output, context.squeeze(1)], dim=-1)  # (B, 2H)
        output = onednn.product(joined, packed.combine, None, "tanh")
    new_feed = output if decoder.input_feed else None
    bias = decoder.output_projection.bias
    logits = onednn.product(output, packed.output, bias)  # (B, V)
    return logits, (h, c, new_feed), None if weights is None else weights.squeeze(1)


def _packed_lstm_step(tokens, extra, h, c, packed: DecodingWeights):
    """One step of the decoder's LSTM (eval mode) with ``DecodingWeights``:
    each layer's gates in one product (the first layer's word share looked
    up), then the LSTM cell. ``extra`` is what joins the word embedding in
    the first layer's input (input feeding's vector, Bahdanau's context), or
    None."""
    new_h, new_c = [], []
    x = None
    for layer, (weight, bias) in enumerate(packed.lstm):
        if layer == 0:
            inputs = h[0] if extra is None else torch.cat([extra, h[0]], dim=1)
            word_gates = packed.word_gates.index_select(0, tokens)
            gates = onednn.product(inputs, weight, add=word_gates)
        else:
            inputs = torch.cat([x, h[layer]], dim=1)
            gates = onednn.product(inputs, weight, bias)
        hidden = gates.size(1) // 4
        act = torch.sigmoid(gates)  # i, f, o (g is overwritten next)
        torch.tanh(
            gates[:, 2 * hidden : 3 * hidden], out=act[:, 2 * hidden : 3 * hidden]
        )
        i, f, g, o = act.chunk(4, dim=1)
        c_l = torch.addcmul(f * c[layer], i, g)
        x = o * torch.tanh(c_l)
        new_h.append(x)
        new_c.append(c_l)
    return x, (torch.stack(new_h), torch.stack(new_c))
