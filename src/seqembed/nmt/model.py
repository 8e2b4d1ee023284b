"""The LSTM encoder-decoder, read top to bottom: Encoder, attention, Decoder, Seq2Seq.

Without attention this is the design document's model: the encoder's final
LSTM state is the whole sentence's context and the decoder's initial state.
Attention (Luong or Bahdanau) is an option on top, over the encoder outputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqembed.config import ModelConfig
from seqembed.data.vocab import PAD
from seqembed.nmt.cpu import onednn
from seqembed.nmt.cpu.dropout import Dropout
from seqembed.nmt.cpu.input_feeding import InputFeedingRecurrence

# A decoder state: LSTM (h, c), each (num_layers, B, hidden), and the vector fed
# back into the next input (Luong input feeding) or None.
DecoderState = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class Encoder(nn.Module):
    """Embedding (padding_idx 0) + LSTM over a packed, padded batch."""

    def __init__(
        self,
        vocab_size: int,
        emb_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__()
        self.bidirectional = bidirectional
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.dropout = Dropout(dropout)
        per_direction = hidden_size // 2 if bidirectional else hidden_size
        self.lstm = nn.LSTM(
            emb_size,
            per_direction,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor):
        embedded = self.dropout(self.embedding(src))  # (B, S, emb)
        packed = pack_padded_sequence(
            embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, (h, c) = self.lstm(packed)
        memory, _ = pad_packed_sequence(
            packed_out, batch_first=True, total_length=src.size(1)
        )  # (B, S, hidden)
        if self.bidirectional:
            h, c = self._join_directions(h), self._join_directions(c)
        return memory, (h, c)  # h, c: (num_layers, B, hidden)

    def _join_directions(self, state: torch.Tensor) -> torch.Tensor:
        # (layers * 2, B, hidden/2) -> (layers, B, hidden): [forward; backward]
        layers2, batch, half = state.shape
        state = state.view(self.num_layers, 2, batch, half)
        return torch.cat([state[:, 0], state[:, 1]], dim=-1)


def _by_sentence(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """query (B*G, T, H) as (B, G*T, H): beam search's G = K hypotheses of a
    sentence (consecutive rows) attend to the sentence's one copy of the
    source, so it is neither copied K times nor re-copied as beams move."""
    rows, steps, hidden = query.shape
    return query.reshape(keys.size(0), rows // keys.size(0) * steps, hidden)


class LuongAttention(nn.Module):
    """Luong, Pham & Manning 2015, eq. (8), global attention.

    score(h_t, m_s) = h_t . m_s (dot) or h_t . W_a m_s (general), softmax over
    the source positions; padded positions get no weight.
    """

    def __init__(self, hidden_size: int, score: str = "general"):
        super().__init__()
        self.key = (
            onednn.Linear(hidden_size, hidden_size, bias=False, everywhere=False)
            if score == "general"
            else None
        )

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key(memory) if self.key is not None else memory

    def forward(self, query, keys, memory, src_mask):
        # query (B*G, T, H); keys, memory (B, S, H); src_mask (B, S), True = word
        rows, steps, _ = query.shape
        scores = torch.bmm(_by_sentence(query, keys), keys.transpose(1, 2))
        scores = scores.masked_fill(~src_mask.unsqueeze(1), float("-inf"))
        weights = F.softmax(scores, dim=-1)  # (B, G*T, S)
        context = torch.bmm(weights, memory)  # (B, G*T, H)
        return context.view(rows, steps, -1), weights.view(rows, steps, -1)


class BahdanauAttention(nn.Module):
    """Bahdanau, Cho & Bengio 2015, eq. (6), additive attention.

    e_ts = v . tanh(W_q s_{t-1} + W_k m_s): the query is the decoder state
    *before* step t, so the context can feed that step's input.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.key = nn.Linear(hidden_size, hidden_size, bias=False)
        self.query = nn.Linear(hidden_size, hidden_size, bias=False)
        self.energy = nn.Linear(hidden_size, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key(memory)

    def forward(self, query, keys, memory, src_mask):
        # query (B*G, T, H) -> (B, G*T, 1, H) + keys (B, 1, S, H)
        rows, steps, _ = query.shape
        query = _by_sentence(self.query(query), keys)
        energy = torch.tanh(query.unsqueeze(2) + keys.unsqueeze(1))
        scores = self.energy(energy).squeeze(-1)  # (B, G*T, S)
        scores = scores.masked_fill(~src_mask.unsqueeze(1), float("-inf"))
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, memory)  # (B, G*T, H)
        return context.view(rows, steps, -1), weights.view(rows, steps, -1)


@dataclass
class EncodedSource:
    """What the decoder attends to; every tensor has the batch first. In beam
    search one row per sentence serves its K consecutive decoder rows."""

    memory: torch.Tensor  # (B, S, H) encoder outputs
    keys: torch.Tensor | None  # (B, S, H) attention keys, precomputed once
    src_mask: torch.Tensor  # (B, S) True at real words

    def index_select(self, index: torch.Tensor) -> EncodedSource:
        return EncodedSource(
            self.memory.index_select(0, index),
            None if self.keys is None else self.keys.index_select(0, index),
            self.src_mask.index_select(0, index),
        )


@dataclass
class DecodingWeights:
    """The decoder's weights reordered once for oneDNN (onednn.py), for
    translating: every step multiplies the same weights with a few hundred
    rows (sentences x beam), 1.3-1.8x faster than torch.mm on this CPU."""

    word_gates: torch.Tensor  # (V, 4H) W_ih[:, :emb] @ embedding + biases
    lstm: list[tuple[torch.Tensor, torch.Tensor | None]]  # weight, bias a layer
    combine: torch.Tensor | None
    output: torch.Tensor


def reorder_state(state: DecoderState, index: torch.Tensor) -> DecoderState:
    """Pick batch rows of a decoder state (beam search reordering)."""
    h, c, feed = state
    return (
        h.index_select(1, index),
        c.index_select(1, index),
        None if feed is None else feed.index_select(0, index),
    )


class Decoder(nn.Module):
    """Embedding + LSTM + output projection, optionally with attention.

    Per step t, with y_{t-1} the previous target word and s the LSTM state:

    * none:      s_t = LSTM(emb(y_{t-1}), s_{t-1});  logits = W_o s_t
    * luong:     s_t = LSTM(emb(y_{t-1}) [; a_{t-1}], s_{t-1});  c_t = attn(s_t)
                 a_t = tanh(W_c [s_t; c_t]);  logits = W_o a_t
    * bahdanau:  c_t = attn(s_{t-1});  s_t = LSTM([emb(y_{t-1}); c_t], s_{t-1})
                 a_t = tanh(W_c [s_t; c_t]);  logits = W_o a_t
    """

    def __init__(
        self,
        vocab_size: int,
        emb_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        attention: str = "none",
        luong_score: str = "general",
        input_feed: bool = False,
    ):
        super().__init__()
        self.attention_type = attention
        self.input_feed = attention == "luong" and input_feed
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.dropout = Dropout(dropout)
        feeds_vector = self.input_feed or attention == "bahdanau"
        self.lstm = nn.LSTM(
            emb_size + (hidden_size if feeds_vector else 0),
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        if attention == "luong":
            self.attention = LuongAttention(hidden_size, luong_score)
        elif attention == "bahdanau":
            self.attention = BahdanauAttention(hidden_size)
        else:
            self.attention = None
        if self.attention is not None:
            self.combine = onednn.Linear(
                2 * hidden_size, hidden_size, bias=False, everywhere=False
            )
        # forward product through oneDNN (onednn.Linear)
        self.output_projection = onednn.Linear(hidden_size, vocab_size)

    @property
    def parallel_over_time(self) -> bool:
        """True when no step's input depends on the previous step's output,
        so teacher-forced training runs the LSTM over all steps in one call."""
        return self.attention_type == "none" or (
            self.attention_type == "luong" and not self.input_feed
        )

    def initial_state(self, encoder_state, batch_size: int) -> DecoderState:
        h, c = encoder_state
        feed = h.new_zeros(batch_size, self.hidden_size) if self.input_feed else None
        return h, c, feed

    def hidden_parallel(self, tgt_in, state: DecoderState, source: EncodedSource):
        """All steps at once (teacher forcing); returns the vectors that the
        output projection reads, (B, T, H)."""
        h, c, _ = state
        embedded = self.dropout(self.embedding(tgt_in))  # (B, T, emb)
        outputs, _ = self.lstm(embedded, (h, c))  # (B, T, H)
        if self.attention is not None:
            context, _ = self.attention(
                outputs, source.keys, source.memory, source.src_mask
            )
            outputs = torch.tanh(self.combine(torch.cat([outputs, context], dim=-1)))
        return outputs

    @property
    def fast_input_feeding(self) -> bool:
        """True when teacher-forced training can use ``InputFeedingRecurrence``
        (one LSTM layer)."""
        return self.input_feed and self.lstm.num_layers == 1

    def forward_input_feeding(
        self, tgt_in, tgt_out, state: DecoderState, source: EncodedSource
    ):
        """Teacher forcing with input feeding (``InputFeedingRecurrence``):
        returns logits (N, V) and targets (N,) of the N real target positions,
        packed time-major with the batch sorted by target length."""
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
        return self.output_projection(self.dropout(outputs)), targets

    def _lstm_step(self, x, h, c):
        """One time step of ``self.lstm`` with its own weights, through
        ``torch.lstm_cell``: the same math as ``self.lstm`` on a length-1
        sequence; in training (forward and backward) 16% faster with input
        feeding, measured by bench/speed.py."""
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

    def decoding_weights(self) -> DecodingWeights | None:
        """``step``'s weights for translating, or None where oneDNN does not
        apply (training, bf16, another device): ``step`` then runs as it
        always does. Made from the parameters as they are now: make them
        again after any change (there is no cache, because a fused optimiser
        updates parameters without bumping their version counters)."""
        if self.training or not onednn.applies(self.output_projection.weight):
            return None
        with torch.no_grad():
            return self._make_decoding_weights()

    def _make_decoding_weights(self) -> DecodingWeights:
        rows = 256  # oneDNN's layout hint; products of any row count work
        lstm, layers, emb = self.lstm, [], self.embedding.embedding_dim
        word_gates = None
        for layer in range(lstm.num_layers):
            weight_ih = getattr(lstm, f"weight_ih_l{layer}")
            weight_hh = getattr(lstm, f"weight_hh_l{layer}")
            bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(
                lstm, f"bias_hh_l{layer}"
            )
            if layer == 0:
                # The word's share of the first layer's gates, one row per
                # target word: looked up, not multiplied, at every step.
                word_gates = F.linear(self.embedding.weight, weight_ih[:, :emb], bias)
                weight, bias = torch.cat([weight_ih[:, emb:], weight_hh], dim=1), None
            else:
                weight = torch.cat([weight_ih, weight_hh], dim=1)
            layers.append((onednn.reorder(weight, rows), bias))
        combine = None
        if self.attention is not None:
            combine = onednn.reorder(self.combine.weight, rows)
        output = onednn.reorder(self.output_projection.weight, rows)
        return DecodingWeights(word_gates, layers, combine, output)

    def _packed_lstm_step(self, tokens, extra, h, c, packed: DecodingWeights):
        """One step of ``self.lstm`` (eval mode) with ``decoding_weights``:
        each layer's gates in one product (the first layer's word share
        looked up), then PyTorch's LSTM cell. ``extra`` is what joins the
        word embedding in the first layer's input (input feeding's vector,
        Bahdanau's context), or None."""
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

    def step(
        self,
        tokens,
        state: DecoderState,
        source: EncodedSource,
        packed: DecodingWeights | None = None,
    ):
        """One step for a batch of previous tokens (B,); ``packed`` from
        ``decoding_weights`` for speed (same results within float rounding).

        Returns logits (B, V), the new state, and attention weights (B, S) or None.
        """
        output, state, weights = self.step_output(tokens, state, source, packed)
        if packed is not None:  # eval mode: no dropout
            bias = self.output_projection.bias
            return onednn.product(output, packed.output, bias), state, weights
        return self.output_projection(self.dropout(output)), state, weights

    def step_output(
        self,
        tokens,
        state: DecoderState,
        source: EncodedSource,
        packed: DecodingWeights | None = None,
    ):
        """``step`` before the output projection: the (attentional) hidden
        vector (B, H), so teacher-forced training can project all steps in one
        matrix multiplication."""
        h, c, feed = state
        weights = None
        extra = None  # what joins the word embedding in the LSTM's input
        if self.attention_type == "bahdanau":
            query = h[-1].unsqueeze(1)  # (B, 1, H): the state before this step
            context, weights = self.attention(
                query, source.keys, source.memory, source.src_mask
            )
            extra = context.squeeze(1)
        elif self.input_feed:
            extra = feed
        if packed is not None:
            output, (h, c) = self._packed_lstm_step(tokens, extra, h, c, packed)
            output = output.unsqueeze(1)  # (B, 1, H)
        else:
            embedded = self.dropout(self.embedding(tokens))  # (B, emb)
            if extra is not None:
                embedded = torch.cat([embedded, extra], dim=-1)
            if torch.is_grad_enabled():
                output, (h, c) = self._lstm_step(embedded, h, c)
                output = output.unsqueeze(1)  # (B, 1, H)
            else:
                # Decoding without decoding_weights (bf16, a GPU): the fused
                # LSTM kernel wins.
                output, (h, c) = self.lstm(embedded.unsqueeze(1), (h, c))
        if self.attention_type == "luong":
            context, weights = self.attention(
                output, source.keys, source.memory, source.src_mask
            )
        if self.attention is not None:
            joined = torch.cat([output, context], dim=-1)
            if packed is not None:
                output = onednn.product(joined.squeeze(1), packed.combine, None, "tanh")
            else:
                output = torch.tanh(self.combine(joined))
        output = output.reshape(output.size(0), -1)  # (B, H)
        new_feed = output if self.input_feed else None
        return output, (h, c, new_feed), None if weights is None else weights.squeeze(1)


class Seq2Seq(nn.Module):
    # The model's three word-vector tables, by the names the analysis uses,
    # and where each lives in the state dict:
    #   src  encoder input embeddings (source words)
    #   tgt  decoder input embeddings (target words)
    #   out  decoder output projection rows (target words)
    EMBEDDING_WEIGHTS = {
        "src": "encoder.embedding.weight",
        "tgt": "decoder.embedding.weight",
        "out": "decoder.output_projection.weight",
    }

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def embedding_tables(self) -> dict[str, nn.Parameter]:
        """{"src", "tgt", "out"}: the (n_words, dim) weights named above, the
        one way code outside the model reaches them."""
        parameters = dict(self.named_parameters())
        return {kind: parameters[name] for kind, name in self.EMBEDDING_WEIGHTS.items()}

    @classmethod
    def from_config(cls, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int):
        """The one place that reads a ModelConfig."""
        encoder = Encoder(
            src_vocab_size,
            config.emb_size,
            config.hidden_size,
            config.num_layers,
            config.dropout,
            config.bidirectional,
        )
        decoder = Decoder(
            tgt_vocab_size,
            config.emb_size,
            config.hidden_size,
            config.num_layers,
            config.dropout,
            config.attention,
            config.luong_score,
            config.input_feed,
        )
        model = cls(encoder, decoder)
        if config.init == "uniform":
            for parameter in model.parameters():
                nn.init.uniform_(parameter, -config.init_range, config.init_range)
            # Keep the padding rows at zero, as padding_idx promises.
            with torch.no_grad():
                encoder.embedding.weight[PAD].zero_()
                decoder.embedding.weight[PAD].zero_()
        return model

    def encode(self, src, src_lengths) -> tuple[EncodedSource, DecoderState]:
        memory, encoder_state = self.encoder(src, src_lengths)
        attention = self.decoder.attention
        source = EncodedSource(
            memory=memory,
            keys=attention.keys(memory) if attention is not None else None,
            src_mask=src != PAD,
        )
        return source, self.decoder.initial_state(encoder_state, src.size(0))

    def forward(
        self, src, src_lengths, tgt_in, teacher_forcing: float = 1.0, tgt_out=None
    ):
        """Training forward pass; returns logits (B, T, V).

        With ``tgt_out`` (B, T), returns (logits (N, V), targets (N,)) for the
        N real target positions only: padded positions are not projected onto
        the vocabulary (the loss ignores them), nor, with input feeding, run.
        """
        source, state = self.encode(src, src_lengths)
        decoder = self.decoder
        if (
            teacher_forcing >= 1.0
            and tgt_out is not None
            and decoder.fast_input_feeding
        ):
            return decoder.forward_input_feeding(tgt_in, tgt_out, state, source)
        if teacher_forcing >= 1.0:
            if decoder.parallel_over_time:
                hidden = decoder.hidden_parallel(tgt_in, state, source)
            else:  # step by step, but one projection at the end
                outputs = []
                for t in range(tgt_in.size(1)):
                    output, state, _ = decoder.step_output(tgt_in[:, t], state, source)
                    outputs.append(output)
                hidden = torch.stack(outputs, dim=1)  # (B, T, H)
            if tgt_out is not None:
                real = tgt_out != PAD
                hidden, targets = hidden[real], tgt_out[real]
            logits = decoder.output_projection(decoder.dropout(hidden))
            return logits if tgt_out is None else (logits, targets)
        all_logits = []
        tokens = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            logits, state, _ = self.decoder.step(tokens, state, source)
            all_logits.append(logits)
            if t + 1 < tgt_in.size(1):
                # Scheduled sampling: sometimes feed the model's own guess.
                use_gold = random.random() < teacher_forcing
                tokens = tgt_in[:, t + 1] if use_gold else logits.argmax(-1)
        logits = torch.stack(all_logits, dim=1)  # (B, T, V)
        if tgt_out is None:
            return logits
        real = tgt_out != PAD
        return logits[real], tgt_out[real]
