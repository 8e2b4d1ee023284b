"""The LSTM encoder-decoder, read top to bottom: Encoder, attention, Decoder, Seq2Seq.

Without attention this is the design document's model (Sutskever, Vinyals &
Le 2014): the encoder's final LSTM state is the whole sentence's context and
the decoder's initial state. Attention (Luong or Bahdanau) is an option on
top, over the encoder outputs.

This file is the reference model: plain torch modules, one path per step.
The fast CPU kernels (``seqembed.nmt.cpu``) plug in at one place, when the
model is built (``seqembed.nmt.build.build_model``, config key
``model.kernels``): they swap some of these modules and methods for drop-in
twins that compute the same function with the same parameters; their tests
check each twin against this file.

Shapes: B sentences (or decoder rows), S source and T target positions,
H = hidden_size, V = the target vocabulary.
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
        self.dropout = nn.Dropout(dropout)
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
            nn.Linear(hidden_size, hidden_size, bias=False)
            if score == "general"
            else None
        )

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key(memory) if self.key is not None else memory  # W_a m_s

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
        return self.key(memory)  # W_k m_s

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

    a_t is Luong et al.'s attentional vector (eq. 5), logits as in their eq.
    (6); [; a_{t-1}] is their input feeding (section 3.3).
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
        self.dropout = nn.Dropout(dropout)
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
            self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)  # W_c
        self.output_projection = nn.Linear(hidden_size, vocab_size)  # W_o

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

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits (..., V) of attentional vectors (..., H): W_o a_t + b."""
        return self.output_projection(self.dropout(hidden))

    def step(self, tokens, state: DecoderState, source: EncodedSource):
        """One step for a batch of previous tokens (B,).

        Returns logits (B, V), the new state, and attention weights (B, S) or None.
        """
        output, state, weights = self.step_output(tokens, state, source)
        return self.project(output), state, weights

    def step_output(self, tokens, state: DecoderState, source: EncodedSource):
        """``step`` before the output projection: the (attentional) hidden
        vector (B, H), so teacher-forced training can project all steps in one
        matrix multiplication."""
        h, c, feed = state
        x = self.dropout(self.embedding(tokens))  # (B, emb)
        weights = None
        if self.attention_type == "bahdanau":
            query = h[-1].unsqueeze(1)  # (B, 1, H): the state before this step
            context, weights = self.attention(
                query, source.keys, source.memory, source.src_mask
            )
            x = torch.cat([x, context.squeeze(1)], dim=-1)  # (B, emb + H)
        elif self.input_feed:
            x = torch.cat([x, feed], dim=-1)  # (B, emb + H)
        output, (h, c) = self.lstm_step(x, h, c)  # (B, H)
        if self.attention_type == "luong":
            context, weights = self.attention(
                output.unsqueeze(1), source.keys, source.memory, source.src_mask
            )
        if self.attention is not None:
            joined = torch.cat([output, context.squeeze(1)], dim=-1)  # (B, 2H)
            output = torch.tanh(self.combine(joined))  # (B, H)
        new_feed = output if self.input_feed else None
        return output, (h, c, new_feed), None if weights is None else weights.squeeze(1)

    def lstm_step(self, x, h, c):
        """One time step of ``self.lstm``: x (B, in), h and c (layers, B, H);
        returns the top layer's output (B, H) and the new (h, c)."""
        output, (h, c) = self.lstm(x.unsqueeze(1), (h, c))  # (B, 1, H)
        return output.squeeze(1), (h, c)

    def teacher_forced(self, tgt_in, state: DecoderState, source: EncodedSource):
        """The attentional vectors (B, T, H) of all steps, each step fed the
        gold previous word ``tgt_in`` (B, T)."""
        if self.parallel_over_time:
            h, c, _ = state
            embedded = self.dropout(self.embedding(tgt_in))  # (B, T, emb)
            outputs, _ = self.lstm(embedded, (h, c))  # (B, T, H), all steps at once
            if self.attention is None:
                return outputs
            context, _ = self.attention(
                outputs, source.keys, source.memory, source.src_mask
            )  # (B, T, H)
            return torch.tanh(self.combine(torch.cat([outputs, context], dim=-1)))
        outputs = []  # step by step, as decoding runs
        for t in range(tgt_in.size(1)):
            output, state, _ = self.step_output(tgt_in[:, t], state, source)
            outputs.append(output)
        return torch.stack(outputs, dim=1)  # (B, T, H)

    def real_logits(self, tgt_in, tgt_out, state: DecoderState, source):
        """Teacher forcing: logits (N, V) and targets (N,) of the N real target
        positions (``tgt_out`` != PAD); padded ones are not projected onto the
        vocabulary (the loss ignores them)."""
        hidden = self.teacher_forced(tgt_in, state, source)  # (B, T, H)
        real = tgt_out != PAD
        return self.project(hidden[real]), tgt_out[real]


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
        """The reference model of a ModelConfig. ``build_model`` (nmt.build)
        calls this, then adds the kernels ``config.kernels`` asks for."""
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
        self, src, src_lengths, tgt_in, tgt_out, teacher_forcing: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward pass: logits (N, V) and targets (N,) of the N real
        target positions (``tgt_out`` (B, T) != PAD), in an order of the
        decoder's choosing (the loss is a sum or mean over them)."""
        source, state = self.encode(src, src_lengths)
        if teacher_forcing >= 1.0:
            return self.decoder.real_logits(tgt_in, tgt_out, state, source)
        logits = self._sampled_logits(tgt_in, state, source, teacher_forcing)
        real = tgt_out != PAD
        return logits[real], tgt_out[real]

    def logits(self, src, src_lengths, tgt_in, teacher_forcing: float = 1.0):
        """Logits (B, T, V) at every target position, padded ones included."""
        source, state = self.encode(src, src_lengths)
        if teacher_forcing >= 1.0:
            hidden = self.decoder.teacher_forced(tgt_in, state, source)
            return self.decoder.project(hidden)
        return self._sampled_logits(tgt_in, state, source, teacher_forcing)

    def _sampled_logits(self, tgt_in, state, source, teacher_forcing: float):
        """Scheduled sampling (Bengio et al. 2015): step by step, each step fed
        the gold previous word with probability ``teacher_forcing``, else the
        model's own guess. Logits (B, T, V)."""
        all_logits = []
        tokens = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            logits, state, _ = self.decoder.step(tokens, state, source)
            all_logits.append(logits)
            if t + 1 < tgt_in.size(1):
                use_gold = random.random() < teacher_forcing
                tokens = tgt_in[:, t + 1] if use_gold else logits.argmax(-1)
        return torch.stack(all_logits, dim=1)  # (B, T, V)
