"""Greedy and beam search over ``Seq2Seq.encode`` and ``Decoder.step``.

Both work on a whole batch at once. Beam search keeps B x K hypotheses as one
batch of B*K rows, so each step is one decoder call; only finished hypotheses
are handled in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqembed.data.vocab import EOS, SOS
from seqembed.nmt.model import DecoderState, EncodedSource, Seq2Seq, reorder_state


@dataclass
class Hypothesis:
    tokens: list[int]  # without <SOS> and <EOS>
    score: float  # log-probability, length-penalised for beam search
    attention: torch.Tensor | None = None  # (len(tokens) + 1, S) when available


def _logsumexp_(logits: torch.Tensor, row_max: torch.Tensor) -> torch.Tensor:
    """logsumexp over each row (rows, 1), given each row's maximum (rows, 1)
    from the topk or max already taken: in place, so ``logits`` is lost; a
    pass and a (rows, V) buffer fewer than torch.logsumexp."""
    return logits.sub_(row_max).exp_().sum(dim=-1, keepdim=True).log_().add_(row_max)


def max_output_length(src_lengths: torch.Tensor, a: float, b: int) -> int:
    return int(a * int(src_lengths.max()) + b)


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len: int,
    keep_attention: bool = False,
) -> list[Hypothesis]:
    """Pick the most probable word at each step until every row emits <EOS>.

    Rows that have emitted <EOS> leave the batch, so the decoder only ever
    computes sentences that are still being written.
    """
    batch, device = src.size(0), src.device
    source, state = model.encode(src, src_lengths)
    alive = torch.arange(batch, device=device)  # batch rows still decoding
    tokens = torch.full((batch,), SOS, dtype=torch.long, device=device)
    output = torch.full((batch, max_len), EOS, dtype=torch.long, device=device)
    scores = torch.zeros(batch, device=device)
    attention = None
    if keep_attention:  # on the device; one copy to the CPU at the end
        attention = torch.zeros(batch, max_len, src.size(1), device=device)
    for step in range(max_len):
        logits, state, weights = model.decoder.step(tokens, state, source)
        logits = logits.float()
        # log_softmax's maximum, without writing out log_softmax (B, V)
        best, tokens = logits.max(dim=-1)  # (alive,)
        best = best - _logsumexp_(logits, best.unsqueeze(1)).squeeze(1)
        output[alive, step] = tokens
        scores[alive] += best
        if attention is not None and weights is not None:
            attention[alive, step] = weights.float()
        writing = tokens != EOS
        if not bool(writing.all()):
            if not bool(writing.any()):
                break
            keep = writing.nonzero().squeeze(1)
            alive, tokens = alive[keep], tokens[keep]
            state = reorder_state(state, keep)
            source = source.index_select(keep)
    hypotheses = []
    # read from the device once: a GPU is not waited for per sentence
    row_scores = scores.tolist()
    if attention is not None:
        attention = attention.cpu()
    for row, ids in enumerate(output.tolist()):
        words = ids[: ids.index(EOS)] if EOS in ids else ids
        weights = None
        if attention is not None and model.decoder.attention is not None:
            weights = attention[row, : len(words) + 1]
        hypotheses.append(Hypothesis(words, row_scores[row], weights))
    return hypotheses


def length_penalty(length: int, alpha: float) -> float:
    """GNMT (Wu et al. 2016, eq. 14): ((5 + |Y|) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    beam_size: int,
    max_len: int,
    alpha: float = 1.0,
) -> list[Hypothesis]:
    """Batched beam search with a length penalty; returns the best per sentence.

    The n sentences still being searched are n*K rows of one decoder batch.
    Each step scores K*V continuations per sentence and takes the top 2K:
    those ending in <EOS> within the top K become finished hypotheses (as in
    fairseq), the best K others stay alive. A sentence is done once it has K
    finished hypotheses, and its rows leave the batch. With K = 1 this is
    exactly greedy decoding.
    """
    batch, k, device = src.size(0), beam_size, src.device
    source, state = model.encode(src, src_lengths)
    # Step 0 is the same for the K beams of a sentence (<SOS> from the
    # encoder's state): it runs once per sentence and each beam gets a copy.
    sos = torch.full((batch,), SOS, dtype=torch.long, device=device)
    first_logits, state, _ = model.decoder.step(sos, state, source)
    rows = torch.arange(batch, device=device).repeat_interleave(k)  # (B*K,)
    # Only the first beam of each sentence is live at the start.
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    beams = _Beams(
        active=list(range(batch)),
        scores=scores,
        tokens=sos,
        history=torch.empty((batch * k, 0), dtype=torch.long, device=device),
        state=reorder_state(state, rows),  # the source stays one row a sentence
        source=source,
    )
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    for step in range(max_len):
        if step == 0:
            logits = first_logits.index_select(0, rows)
        else:
            logits, beams.state, _ = model.decoder.step(
                beams.tokens, beams.state, beams.source
            )
        top = _top_continuations(logits.float(), beams.scores, k)
        last = step == max_len - 1
        searching = _record_finished(top, beams, finished, k, alpha, last)
        if last or not any(searching):
            break
        beams = _advance(beams, top, searching, k)
    return [_best(hypotheses) for hypotheses in finished]


@dataclass
class _Beams:
    """The live hypotheses of the n sentences still searched, K rows each."""

    active: list[int]  # the sentence of each block of K rows
    scores: torch.Tensor  # (n, K) log-probabilities so far
    tokens: torch.Tensor  # (n*K,) each beam's last word (from step 1 on)
    history: torch.Tensor  # (n*K, steps) the words so far
    state: DecoderState  # n*K rows
    source: EncodedSource  # n rows: one a sentence


@dataclass
class _Top:
    """A step's best 2K continuations of each sentence, best first: (n, 2K)."""

    scores: torch.Tensor  # log-probabilities
    beams: torch.Tensor  # which of the sentence's K beams each continues
    words: torch.Tensor
    is_eos: torch.Tensor


def _top_continuations(logits: torch.Tensor, scores: torch.Tensor, k: int) -> _Top:
    """The best 2K of each sentence's K*V continuations, from ``logits``
    (n*K, V), lost (overwritten in place), and the beams' ``scores`` (n, K)."""
    n, vocab = scores.size(0), logits.size(-1)
    # The best 2K of a sentence's K*V continuations are among the best 2K
    # of each hypothesis (a row adds one score to all its words), so only
    # those are scored: no (n*K, V) log_softmax or sum is written out.
    width = min(2 * k, vocab)
    row_logits, row_words = logits.topk(width, dim=-1)  # (n*K, 2K)
    row_scores = row_logits - _logsumexp_(logits, row_logits[:, :1])
    candidates = (scores.view(-1, 1) + row_scores).view(n, k * width)
    top_scores, top_ids = candidates.topk(min(2 * k, k * width), dim=-1)
    top_words = row_words.view(n, k * width).gather(1, top_ids)
    return _Top(top_scores, top_ids // width, top_words, top_words == EOS)


def _record_finished(
    top: _Top, beams: _Beams, finished: list, k: int, alpha: float, last: bool
) -> list[bool]:
    """Add the hypotheses that end at this step (in <EOS> within a sentence's
    top K, or all at the ``last`` step) to ``finished``, best first, up to K
    a sentence; returns for each active sentence whether it is still searched."""
    ending = top.is_eos[:, :k] | last
    ends = ending.nonzero().tolist()
    if ends:  # Python lists: indexing a tensor per hypothesis costs more
        end_scores, end_beams = top.scores.tolist(), top.beams.tolist()
        end_words, end_eos = top.words.tolist(), top.is_eos.tolist()
    for b, j in ends:
        sentence = beams.active[b]
        if len(finished[sentence]) >= k or end_scores[b][j] == float("-inf"):
            continue
        words = beams.history[b * k + end_beams[b][j]].tolist()
        if not end_eos[b][j]:
            words.append(end_words[b][j])
        penalised = end_scores[b][j] / length_penalty(len(words) + 1, alpha)
        finished[sentence].append((penalised, words))
    return [len(finished[sentence]) < k for sentence in beams.active]


def _advance(beams: _Beams, top: _Top, searching: list[bool], k: int) -> _Beams:
    """The next step's beams: each searched sentence's best K continuations
    that did not end in <EOS>; the rows of sentences that are done leave."""
    n, device = len(beams.active), top.scores.device
    alive_scores, order = top.scores.masked_fill(top.is_eos, float("-inf")).topk(k)
    words = top.words.gather(1, order)  # (n, K)
    offsets = (torch.arange(n, device=device) * k).unsqueeze(1)
    parents = offsets + top.beams.gather(1, order)  # (n, K) rows of the batch
    active, source = beams.active, beams.source
    if not all(searching):  # drop the rows of sentences that are done
        keep = torch.tensor(searching, device=device).nonzero().squeeze(1)
        active = [active[i] for i in keep.tolist()]
        alive_scores, words, parents = alive_scores[keep], words[keep], parents[keep]
        source = source.index_select(keep)
    parents = parents.view(-1)
    return _Beams(
        active=active,
        scores=alive_scores,
        tokens=words.view(-1),
        history=torch.cat([beams.history[parents], words.view(-1, 1)], dim=1),
        state=reorder_state(beams.state, parents),
        source=source,
    )


def _best(hypotheses: list[tuple[float, list[int]]]) -> Hypothesis:
    if not hypotheses:
        return Hypothesis([], float("-inf"))
    score, words = max(hypotheses, key=lambda item: item[0])
    return Hypothesis(words, score)
