"""Teacher-forced training of the Luong input-feeding decoder, fast on a CPU.

With input feeding, step t's LSTM input holds the attentional vector of step
t-1, so the decoder must run step by step. Run through autograd, every step
records some 25 small operations, and the backward pass computes each weight
gradient once per step (64-row matrix products) and adds it into the
accumulated gradient. Here one ``autograd.Function`` runs the recurrence with
a hand-written backward pass, as cuDNN does for its RNNs:

* only what truly depends on the previous step is computed per step (the
  recurrent half of the LSTM gates, attention, the combine layer, and their
  input gradients); the weight gradients, and those of the attention's keys
  and memory, are large matrix products over all steps at the end, and the
  embedding half of the gates is one product over all steps before the loop;
* the batch is sorted by target length and step t runs only the sentences
  that are still going (``batch_sizes``, as in a PackedSequence), so padded
  positions cost nothing, here or in the output projection;
* what does not depend on the previous step (the weight gradients, the
  element-wise derivatives of the LSTM cell and the combine layer) is done
  over all positions at once;
* the sentences are independent of each other, so with T threads the step
  loops run as T parts side by side, each on its own thread, with every
  T-th sentence (``Part``): a product of 32 rows on one thread runs at
  ~105 GFLOP/s where one of 64 rows on two reaches ~122 (Zen 4, oneDNN;
  the second thread is woken and joined twice a step), and the small
  operations between the products, on one thread either way, now run on
  all of them.

The maths is ``Decoder.step_output``'s for one LSTM layer, Luong attention
and input feeding; tests/nmt/cpu/test_input_feeding.py checks outputs and
every gradient against that step loop, the reference model's included.

Under bf16 autocast the matrix products (those autocast would run in bf16:
the LSTM gates, the combine layer, their gradients) run in bf16 with fp32
results, and everything else in fp32, as autocast does it for the step loop.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from seqembed.nmt.cpu.packed import cells_before, summed_over_steps
from seqembed.nmt.cpu.parts import (
    Part,
    by_sentence,
    in_packed_order,
    on_threads,
    part_major_order,
)
from seqembed.nmt.cpu.products import Products


class InputFeedingRecurrence(torch.autograd.Function):
    """The recurrence over a packed, time-major batch.

    Inputs: ``embedded`` (N, E), the target word embeddings of all N real
    target positions, packed time-major (step 0's rows, then step 1's, ...);
    ``h0``, ``c0`` (B, H); ``keys``, ``memory`` (B, S, H) and ``src_mask``
    (B, S), with the batch sorted by target length, longest first; the LSTM's
    own ``weight_ih`` (4H, E + H), its input being [embedded; feed],
    ``weight_hh`` (4H, H) and ``bias`` (4H), the sum of its two biases;
    ``combine_weight`` (H, 2H); ``batch_sizes``, sentences still going at each
    step; ``product_dtype``, None or autocast's bf16 for the matrix products.
    Output: the attentional vectors (N, H), packed like the input. Under
    autocast the inputs come in as float32 and autocast is off inside.

    The LSTM weights come in as the module's parameters, not as the
    embedding and recurrent column blocks of one matrix: autograd would
    give each slice's gradient back as a zero-filled full-size matrix and add
    them (the step ran 3% faster without it); here each weight's gradient is one
    product, read from one buffer of all positions' [embedded; feed; h].

    A step's sentences are the first ``batch_sizes[t]`` of the previous
    step's, so step t reads its state (h, c, fed-back output) straight from
    the previous step's rows of the saved buffers. Per step only what depends
    on the previous step runs; anything else (the weight gradients, the
    element-wise derivatives of the LSTM cell and of the combine layer's
    tanh) is computed over all N positions at once: fewer, larger operations,
    which on a CPU is most of the time a step takes outside the products.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
    def forward(
        ctx,
        embedded,
        h0,
        c0,
        keys,
        memory,
        src_mask,
        weight_ih,
        weight_hh,
        bias,
        combine_weight,
        batch_sizes: list[int],
        product_dtype: torch.dtype | None = None,
    ):
        n_embedded, hidden = embedded.size(1), weight_hh.size(1)
        parts = Part.split(batch_sizes, torch.get_num_threads())
        order = part_major_order(parts, batch_sizes)
        if order is not None:  # each part's positions together (see Part)
            embedded = embedded.index_select(0, order)
        # [feed; h] @ recurrent^T is the part of the gates computed per step
        recurrent = torch.cat([weight_ih[:, n_embedded:], weight_hh], dim=1)
        products = Products(
            recurrent, combine_weight, parts[0].batch_sizes[0], product_dtype,
            step_threads=max(1, torch.get_num_threads() // len(parts)),
        )  # fmt: skip
        saved = _Positions.empty(embedded, hidden)
        # the embedding half of the gates, and both biases, for all steps at once
        embedded_gates = products.input_gates(embedded, weight_ih[:, :n_embedded], bias)
        # -inf at padded source positions, added to the attention scores
        score_bias = torch.zeros_like(src_mask, dtype=keys.dtype).masked_fill_(
            ~src_mask, float("-inf")
        )

        def forward_steps(part: Part):
            rows, of_part = part.rows, part.sentences_of
            return _forward_steps(
                products, saved.at(rows), embedded_gates[rows], of_part(h0),
                of_part(c0), of_part(keys), of_part(memory), of_part(score_bias),
                part.batch_sizes,
            )  # fmt: skip

        steps = on_threads(forward_steps, parts, products)
        attention = torch.cat([weights for weights, _ in steps])
        outputs = torch.cat([part_outputs for _, part_outputs in steps])
        ctx.save_for_backward(
            saved.lstm_inputs, weight_ih, saved.activations, c0, saved.cells,
            saved.tanh_cells, attention, saved.combined_inputs, outputs, keys,
            memory, order,
        )  # fmt: skip
        ctx.parts = parts
        ctx.products = products
        return in_packed_order(outputs, order)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_outputs):
        (
            lstm_inputs,
            weight_ih,
            activations,
            c0,
            cells,
            tanh_cells,
            attention,
            combined_inputs,
            outputs,
            keys,
            memory,
            order,
        ) = ctx.saved_tensors
        parts, products = ctx.parts, ctx.products
        if order is not None:
            grad_outputs = grad_outputs.index_select(0, order)
        hidden = outputs.size(1)
        # Over all positions at once, the derivatives that need no gradient
        # from later steps. out = tanh(W_c [h; context]): d pre = d out * (1 -
        # out^2), where d out = the loss's gradient + the next step's (input
        # feeding), added per step in _backward_steps.
        # (1 - x^2 as addcmul on a broadcast 1: one pass, no tensor of ones)
        one = outputs.new_ones(())
        tanh_slope = torch.addcmul(one, outputs, outputs, value=-1)
        grad_combine_in = grad_outputs * tanh_slope
        # h = o * tanh(c): dc/dh
        i, f, g, o = activations.chunk(4, dim=1)
        cell_slope = torch.addcmul(one, tanh_cells, tanh_cells, value=-1).mul_(o)
        # c = f * c_prev + i * g, h = o * tanh(c): d gate pre-activation =
        # gate_slopes * d c for i, f and g, gate_slopes * d h for o.
        # sigmoid' = a - a^2; g's is replaced
        gate_slopes = torch.addcmul(activations, activations, activations, value=-1)
        gate_slopes[:, :hidden].mul_(g)
        previous_cells = torch.cat([
            cells_before(part.sentences_of(c0), cells[part.rows], part.batch_sizes)
            for part in parts
        ])  # fmt: skip
        gate_slopes[:, hidden : 2 * hidden].mul_(previous_cells)
        torch.addcmul(
            one, g, g, value=-1, out=gate_slopes[:, 2 * hidden : 3 * hidden]
        ).mul_(i)
        gate_slopes[:, 3 * hidden :].mul_(tanh_cells)
        grad_gates = gate_slopes  # multiplied in place, step by step
        # Every position's d context and d scores, for the gradients of the
        # attention's keys and memory after the loop (summed_over_steps)
        d_contexts = outputs.new_empty(outputs.size(0), hidden)
        d_all_scores = torch.empty_like(attention)

        def backward_steps(part: Part):
            rows = part.rows
            return _backward_steps(
                products, part.batch_sizes,
                _Slopes(tanh_slope[rows], cell_slope[rows], f[rows]),
                grad_combine_in[rows], grad_gates[rows], attention[rows],
                part.sentences_of(keys), part.sentences_of(memory),
                d_contexts[rows], d_all_scores[rows],
            )  # fmt: skip

        grad_state = on_threads(backward_steps, parts, products)
        grad_h = by_sentence([g_h for g_h, _ in grad_state], parts)
        grad_c = by_sentence([g_c for _, g_c in grad_state], parts)
        # context = weights @ memory and scores = keys @ h at every step: the
        # gradients of memory and keys are each sentence's sums over its steps
        grad_memory = by_sentence([
            summed_over_steps(attention[p.rows], d_contexts[p.rows], p.batch_sizes)
            for p in parts
        ], parts)  # fmt: skip
        grad_keys = by_sentence([
            summed_over_steps(
                d_all_scores[p.rows], combined_inputs[p.rows, :hidden], p.batch_sizes
            )
            for p in parts
        ], parts)  # fmt: skip
        # The weight gradients, each one product over all positions (in any
        # order: the parts' positions as they are).
        n_embedded = weight_ih.size(1) - hidden
        needs = ctx.needs_input_grad
        grad_embedded = None
        if needs[0]:
            grad_embedded = in_packed_order(
                products.plain(grad_gates, weight_ih[:, :n_embedded]), order
            )
        grad_weight_ih = products.weight_gradient(
            grad_gates, lstm_inputs[:, : n_embedded + hidden]
        )
        grad_weight_hh = products.weight_gradient(
            grad_gates, lstm_inputs[:, n_embedded + hidden :]
        )
        grad_combine = products.weight_gradient(grad_combine_in, combined_inputs)
        return (
            grad_embedded,
            grad_h,
            grad_c,
            grad_keys,
            grad_memory,
            None,
            grad_weight_ih,
            grad_weight_hh,
            grad_gates.sum(0),
            grad_combine,
            None,
            None,
        )


@dataclass
class _Slopes:
    """One part's element-wise derivatives, computed over all positions
    before the backward step loop (rows packed like the part's)."""

    combine: torch.Tensor  # (n, H): 1 - out^2, tanh's slope at the output
    cell: torch.Tensor  # (n, H): o * (1 - tanh(c)^2), dh/dc
    forget: torch.Tensor  # (n, H): f, dc_t/dc_{t-1}


def _backward_steps(
    products, batch_sizes: list[int], slopes: _Slopes, grad_combine_in,
    grad_gates, attention, keys, memory, d_contexts, d_all_scores,
):  # fmt: skip
    """The backward step loop of one part, last step first: finishes
    ``grad_combine_in`` and ``grad_gates`` (d of the combine layer's and the
    gates' pre-activations) in place, fills ``d_contexts`` and
    ``d_all_scores``, and returns the gradients of h0 and c0 (B_p, H).

    Long on purpose: it updates a dozen buffers of all positions in place
    and reads as the chain rule of _forward_steps' step, line by line, only
    in one piece; split, every helper would take most of them."""
    hidden = d_contexts.size(1)
    # Gradients flowing back from step t+1 into step t's output, h and c.
    grad_feed = grad_h = grad_c = None
    end = grad_gates.size(0)
    for n in reversed(batch_sizes):
        rows = slice(end - n, end)
        end -= n
        d_pre = grad_combine_in[rows]
        if grad_feed is not None:
            m = grad_feed.size(0)
            d_pre[:m].addcmul_(grad_feed, slopes.combine[rows][:m])
        d_combined = products.combine_back(d_pre)  # (n, 2H): [d h; d context]
        d_h, d_context = d_combined[:, :hidden], d_combined[:, hidden:]
        if grad_h is not None:
            d_h[:m] += grad_h
        # context = weights @ memory;  weights = softmax(keys @ h + bias)
        weights = attention[rows]
        d_contexts[rows] = d_context
        d_weights = torch.mul(memory[:n], d_context.unsqueeze(1)).sum(2)
        d_scores = d_all_scores[rows]
        torch._softmax_backward_data(
            d_weights, weights, 1, weights.dtype, grad_input=d_scores
        )
        d_h += torch.bmm(d_scores.unsqueeze(1), keys[:n]).squeeze(1)
        d_c = torch.mul(d_h, slopes.cell[rows])
        if grad_c is not None:
            d_c[:m] += grad_c
        d_gates = grad_gates[rows]
        d_gates.view(n, 4, hidden)[:, :3].mul_(d_c.unsqueeze(1))
        d_gates[:, 3 * hidden :].mul_(d_h)
        d_x = products.gates_back(d_gates)  # (n, 2H): [d feed_{t-1}; d h_{t-1}]
        grad_feed, grad_h = d_x[:, :hidden], d_x[:, hidden:]
        grad_c = d_c.mul_(slopes.forget[rows])
    return grad_h, grad_c


@dataclass
class _Positions:
    """Per position, what the backward pass needs, all packed like the input
    (N rows: step 0's sentences, then step 1's, ...)."""

    lstm_inputs: torch.Tensor  # (N, E + 2H): [embedded_t; feed_{t-1}; h_{t-1}]
    activations: torch.Tensor  # (N, 4H): sigmoid/tanh of the gates i, f, g, o
    cells: torch.Tensor  # (N, H): c_t
    tanh_cells: torch.Tensor  # (N, H): tanh(c_t)
    combined_inputs: torch.Tensor  # (N, 2H): [h_t; context_t]

    def at(self, rows: slice) -> _Positions:
        """The same buffers at ``rows`` (views)."""
        return _Positions(*(getattr(self, f.name)[rows] for f in fields(self)))

    @classmethod
    def empty(cls, embedded: torch.Tensor, hidden: int) -> _Positions:
        (n_total, n_embedded), new = embedded.shape, embedded.new_empty
        lstm_inputs = new(n_total, n_embedded + 2 * hidden)
        lstm_inputs[:, :n_embedded] = embedded
        return cls(
            lstm_inputs,
            new(n_total, 4 * hidden),
            new(n_total, hidden),
            new(n_total, hidden),
            new(n_total, 2 * hidden),
        )


def _forward_steps(
    products, saved: _Positions, embedded_gates, h0, c0, keys, memory, score_bias,
    batch_sizes: list[int],
):  # fmt: skip
    """The recurrence, step by step: fills ``saved`` and returns the softmax
    weights (N, S) and the attentional vectors tanh(W_c [h; ctx]) (N, H)."""
    hidden = h0.size(1)
    step_inputs = saved.lstm_inputs[:, -2 * hidden :]  # [feed_{t-1}; h_{t-1}]
    attention, outputs = [], []  # per step
    start = previous = 0
    for t, n in enumerate(batch_sizes):
        rows = slice(start, start + n)
        x = step_inputs[rows]
        if t == 0:
            x[:, :hidden] = 0  # nothing fed back yet
            x[:, hidden:] = h0[:n]
            c_prev = c0[:n]
        else:
            h_prev = saved.combined_inputs[previous : previous + n, :hidden]
            torch.cat([outputs[-1][:n], h_prev], dim=1, out=x)
            c_prev = saved.cells[previous : previous + n]
        h_t = _lstm_cell(products.gates(x, embedded_gates[rows]), c_prev, saved, rows)
        scores = torch.mul(keys[:n], h_t.unsqueeze(1)).sum(2).add_(score_bias[:n])
        weights = torch.softmax(scores, dim=1)  # (n, S)
        # (bmm's batched MKL kernel needs a contiguous result: no out=)
        context = torch.bmm(weights.unsqueeze(1), memory[:n])
        saved.combined_inputs[rows, hidden:] = context.squeeze(1)
        attention.append(weights)
        outputs.append(products.combine_tanh(saved.combined_inputs[rows]))
        previous, start = start, start + n
    return torch.cat(attention), torch.cat(outputs)


def _lstm_cell(gates, c_prev, saved: _Positions, rows: slice) -> torch.Tensor:
    """The LSTM cell on one step's gate pre-activations (n, 4H), in place:
    fills ``saved``'s activations, cells and tanh_cells at ``rows``, and h_t
    into its combined_inputs; returns h_t (n, H)."""
    hidden = c_prev.size(1)
    # g = tanh(z) as 2 sigmoid(2z) - 1, so that one sigmoid covers all four
    # gates (_tanh says why)
    gates[:, 2 * hidden : 3 * hidden] *= 2
    act = torch.sigmoid(gates, out=saved.activations[rows])
    act[:, 2 * hidden : 3 * hidden].mul_(2).sub_(1)
    i, f, g, o = act.chunk(4, dim=1)
    c_t = torch.mul(f, c_prev, out=saved.cells[rows]).addcmul_(i, g)
    tanh_c = _tanh(c_t, out=saved.tanh_cells[rows])
    return torch.mul(o, tanh_c, out=saved.combined_inputs[rows, :hidden])


def _tanh(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1, into ``out``. With torch 2.13 on this
    CPU (Zen 4) torch.tanh takes 2.5 ns a number and sigmoid 0.4: 84 vs 28
    us for 64 x 512 (one thread), once per step. The result differs from
    torch.tanh by at most 2e-7 (absolute)."""
    torch.mul(x, 2, out=out)
    return torch.sigmoid(out, out=out).mul_(2).sub_(1)
