"""Greedy and beam search over ``Seq2Seq.encode`` and ``Decoder.step``.

Both work on a whole batch at once. Beam search keeps B x K hypotheses as one
batch of B*K rows, so each step is one decoder call; only finished hypotheses
are handled in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from seqembed.model import Seq2Seq, reorder_state
from seqembed.vocab import EOS, SOS


@dataclass
class Hypothesis:
    tokens: list[int]  # without <SOS> and <EOS>
    score: float  # log-probability, length-penalised for beam search
    attention: torch.Tensor | None = None  # (len(tokens) + 1, S) when available


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
    """Pick the most probable word at each step until every row emits <EOS>."""
    batch = src.size(0)
    source, state = model.encode(src, src_lengths)
    tokens = torch.full((batch,), SOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    outputs, scores, attentions = [], torch.zeros(batch), []
    for _ in range(max_len):
        logits, state, weights = model.decoder.step(tokens, state, source)
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (B, V)
        best, tokens = log_probs.max(dim=-1)
        scores += torch.where(finished, 0.0, best).cpu()
        tokens = tokens.masked_fill(finished, EOS)
        outputs.append(tokens)
        if keep_attention and weights is not None:
            attentions.append(weights)
        finished |= tokens == EOS
        if bool(finished.all()):
            break
    ids = torch.stack(outputs, dim=1).tolist()  # (B, steps)
    hypotheses = []
    for row in range(batch):
        words = ids[row][: ids[row].index(EOS)] if EOS in ids[row] else ids[row]
        attention = None
        if attentions:
            attention = torch.stack(attentions, dim=1)[row, : len(words) + 1].cpu()
        hypotheses.append(Hypothesis(words, float(scores[row]), attention))
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

    Each step scores K*V continuations per sentence and takes the top 2K: those
    ending in <EOS> become finished hypotheses, the best K others stay alive.
    A sentence is done once it has K finished hypotheses (then no alive one
    ranks in its top K, since both lists come from the same sorted candidates).
    With K = 1 this is exactly greedy decoding.
    """
    batch, k = src.size(0), beam_size
    device = src.device
    source, state = model.encode(src, src_lengths)
    rows = torch.arange(batch, device=device).repeat_interleave(k)  # (B*K,)
    source = source.index_select(rows)
    state = reorder_state(state, rows)

    # Only the first beam of each sentence is live at the start.
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    tokens = torch.full((batch * k,), SOS, dtype=torch.long, device=device)
    history = torch.empty((batch * k, 0), dtype=torch.long, device=device)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool)
    offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)  # (B, 1)

    for step in range(max_len):
        logits, state, _ = model.decoder.step(tokens, state, source)
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        vocab = log_probs.size(-1)
        candidates = (scores.view(-1, 1) + log_probs).view(batch, k * vocab)
        top_scores, top_ids = candidates.topk(min(2 * k, k * vocab), dim=-1)  # (B, 2K)
        top_beams = top_ids // vocab
        top_words = top_ids % vocab
        is_eos = top_words == EOS

        # Record finished hypotheses, best first, up to K per sentence. Only
        # <EOS> candidates ranked in the top K count (as in fairseq): one
        # ranked below K alive continuations is not among the K best yet.
        last = step == max_len - 1
        ending = is_eos[:, :k] | last
        for b, j in ending.nonzero().tolist():
            if done[b] or top_scores[b, j] == float("-inf"):
                continue
            if len(finished[b]) < k:
                words = history[b * k + top_beams[b, j]].tolist()
                if not is_eos[b, j]:
                    words = words + [int(top_words[b, j])]
                score = float(top_scores[b, j]) / length_penalty(len(words) + 1, alpha)
                finished[b].append((score, words))
        for b in range(batch):
            if len(finished[b]) >= k:
                done[b] = True
        if bool(done.all()) or last:
            break

        # Keep the best K continuations that did not end in <EOS>.
        alive_scores = top_scores.masked_fill(is_eos, float("-inf"))
        alive_scores, order = alive_scores.topk(k, dim=-1)  # (B, K)
        beams = top_beams.gather(1, order)
        words = top_words.gather(1, order)
        source_rows = (offsets + beams).view(-1)  # (B*K,)
        scores = alive_scores.masked_fill(done.to(device).unsqueeze(1), float("-inf"))
        history = torch.cat([history[source_rows], words.view(-1, 1)], dim=1)
        state = reorder_state(state, source_rows)
        tokens = words.view(-1)

    results = []
    for b in range(batch):
        if not finished[b]:
            results.append(Hypothesis([], float("-inf")))
            continue
        score, words = max(finished[b], key=lambda item: item[0])
        results.append(Hypothesis(words, score))
    return results
