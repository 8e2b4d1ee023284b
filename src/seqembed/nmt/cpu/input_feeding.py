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
  over all positions at once, and the step loops' small operations run on
  one thread, the products on all (``_Products.one_thread``).

The maths is ``Decoder.step_output``'s for one LSTM layer, Luong attention
and input feeding; tests/test_input_feeding.py checks outputs and every
gradient against that step loop.

Under bf16 autocast the matrix products (those autocast would run in bf16:
the LSTM gates, the combine layer, their gradients) run in bf16 with fp32
results, and everything else in fp32, as autocast does it for the step loop.
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from seqembed.nmt.cpu import onednn


class _Products:
    """The recurrence's four matrix products, each against a fixed weight:
    ``gates(x, add)`` = x @ recurrent^T + add, ``combine_tanh(x)`` =
    tanh(x @ combine^T), and for backward ``gates_back(d)`` = d @ recurrent
    and ``combine_back(d)`` = d @ combine.

    In float32 on a CPU each weight is reordered once for oneDNN (products of
    64 rows run at ~210 instead of ~120 GFLOP/s with MKL, see onednn.py), for
    backward as a transposed convolution's weight (``onednn.InputGradient``);
    with ``dtype`` (bf16 under autocast) both sides are cast to it and the
    results are float32; otherwise plain torch.mm.

    Inside ``one_thread()`` everything else runs on one thread and each
    product on all of them (see there).
    """

    def __init__(self, recurrent, combine, rows: int, dtype: torch.dtype | None):
        self.dtype = dtype
        self.threads = torch.get_num_threads()
        if dtype is not None:  # cast once for forward and backward
            recurrent, combine = recurrent.to(dtype), combine.to(dtype)
            self.weights = [recurrent, combine]
            self.input_gradients = [
                lambda grad, w=w: torch.mm(grad.to(dtype), w).float()
                for w in (recurrent, combine)
            ]
        else:
            self.weights = [onednn.reorder(w, rows) for w in (recurrent, combine)]
            # grad @ weight without a transposed copy of the weight
            self.input_gradients = [
                onednn.InputGradient(w, rows) for w in (recurrent, combine)
            ]

    @contextlib.contextmanager
    def one_thread(self):
        """Run the step loop's small element-wise and attention operations
        (a few thousand to a few hundred thousand numbers each) on one
        thread. Split over two, each pays for waking the other thread (with
        OMP_WAIT_POLICY=PASSIVE it sleeps between operations) and is often
        slower than on one: tanh of 64 x 512 numbers 88 vs 84 us, a 64-batch
        attention product 268 vs 437 us as bmm but 55 us on one thread as
        multiply-and-sum. Measured on a 578-position batch, forward and
        backward: 73-85 ms with everything on two threads, 67-75 ms so."""
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(self.threads)

    def _on_all_threads(self, product, *args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return product(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    def _forward(self, x, weight, add=None, activation="none"):
        if self.dtype is None:
            return onednn.product(x, weight, add=add, activation=activation)
        product = torch.mm(x.to(self.dtype), weight.t()).float()
        if add is not None:
            product += add
        return torch.tanh_(product) if activation == "tanh" else product

    def gates(self, x, add):
        # The add after the product, on this (one) thread: as oneDNN's binary
        # post-op it took 0.115 ms of a 1.47 ms (62, 1024) x (1024, 2048)
        # product, as add_ on one thread ~0.02 ms.
        return self._on_all_threads(self._forward, x, self.weights[0]).add_(add)

    def combine_tanh(self, x):
        return self._on_all_threads(
            self._forward, x, self.weights[1], activation="tanh"
        )

    def gates_back(self, grad):
        return self._on_all_threads(self.input_gradients[0], grad)

    def combine_back(self, grad):
        return self._on_all_threads(self.input_gradients[1], grad)

    def input_gates(self, embedded, weight, bias):
        """embedded @ weight^T + bias over all positions. In float32 through
        oneDNN with the weight (a column slice) copied contiguous, without a
        reorder: (541, 256) x (256, 2048) at 212 GFLOP/s against MKL's 163 on
        the strided slice (2.7 vs 3.5 ms, copy included)."""
        if self.dtype is None:
            return onednn.product(embedded, weight.contiguous(), bias)
        return self.plain(embedded, weight.t(), bias)

    def weight_gradient(self, grad, x):
        """grad^T @ x, summed over all positions: MKL (the faster one there
        on Zen 4, and it takes strided operands as they are) unless oneDNN is
        far ahead on this CPU (``onednn.weight_gradient``)."""
        if self.dtype is None:
            return onednn.weight_gradient(grad, x)
        return self.plain(grad.t(), x)

    def plain(self, a, b, add=None):
        """a @ b (+ add) over all positions: MKL, unless oneDNN is far ahead
        on this CPU (``onednn.mm``)."""
        if self.dtype is None:
            return onednn.mm(a, b) if add is None else torch.addmm(add, a, b)
        a, b = a.to(self.dtype), b.to(self.dtype)
        if add is None:
            return torch.mm(a, b).float()
        # as autocast's F.linear: the bias in bf16 too
        return torch.addmm(add.to(self.dtype), a, b).float()


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
        (n_total, n_embedded), (four_h, hidden) = embedded.shape, weight_hh.shape
        # [feed; h] @ recurrent^T is the part of the gates computed per step
        recurrent = torch.cat([weight_ih[:, n_embedded:], weight_hh], dim=1)
        products = _Products(recurrent, combine_weight, batch_sizes[0], product_dtype)
        new = embedded.new_empty
        # Per position, what the backward pass needs (all packed like the input):
        # the LSTM's inputs [embedded_t; feed_{t-1}; h_{t-1}]
        lstm_inputs = new(n_total, n_embedded + 2 * hidden)
        lstm_inputs[:, :n_embedded] = embedded
        step_inputs = lstm_inputs[:, n_embedded:]  # [feed_{t-1}; h_{t-1}]
        # the embedding half of the gates, and both biases, for all steps at once
        embedded_gates = products.input_gates(embedded, weight_ih[:, :n_embedded], bias)
        activations = new(n_total, four_h)  # sigmoid/tanh of the gates i, f, g, o
        cells = new(n_total, hidden)  # c_t
        tanh_cells = new(n_total, hidden)  # tanh(c_t)
        combined_inputs = new(n_total, 2 * hidden)  # [h_t; context_t]
        attention, outputs = [], []  # per step: softmax weights, tanh(W_c [h; ctx])
        # -inf at padded source positions, added to the attention scores
        score_bias = torch.zeros_like(src_mask, dtype=keys.dtype).masked_fill_(
            ~src_mask, float("-inf")
        )
        with products.one_thread():
            start = previous = 0
            for t, n in enumerate(batch_sizes):
                rows = slice(start, start + n)
                x = step_inputs[rows]
                if t == 0:
                    x[:, :hidden] = 0  # nothing fed back yet
                    x[:, hidden:] = h0[:n]
                    c_prev = c0[:n]
                else:
                    h_prev = combined_inputs[previous : previous + n, :hidden]
                    torch.cat([outputs[-1][:n], h_prev], dim=1, out=x)
                    c_prev = cells[previous : previous + n]
                gates = products.gates(x, embedded_gates[rows])
                # g = tanh(z) as 2 sigmoid(2z) - 1, so that one sigmoid covers
                # all four gates (_tanh says why)
                gates[:, 2 * hidden : 3 * hidden] *= 2
                act = torch.sigmoid(gates, out=activations[rows])
                act[:, 2 * hidden : 3 * hidden].mul_(2).sub_(1)
                i, f, g, o = act.chunk(4, dim=1)
                c_t = torch.mul(f, c_prev, out=cells[rows]).addcmul_(i, g)
                tanh_c = _tanh(c_t, out=tanh_cells[rows])
                h_t = torch.mul(o, tanh_c, out=combined_inputs[rows, :hidden])
                scores = (
                    torch.mul(keys[:n], h_t.unsqueeze(1)).sum(2).add_(score_bias[:n])
                )
                weights = torch.softmax(scores, dim=1)  # (n, S)
                # (bmm's batched MKL kernel needs a contiguous result: no out=)
                context = torch.bmm(weights.unsqueeze(1), memory[:n])
                combined_inputs[rows, hidden:] = context.squeeze(1)
                attention.append(weights)
                outputs.append(products.combine_tanh(combined_inputs[rows]))
                previous, start = start, start + n
        attention, outputs = torch.cat(attention), torch.cat(outputs)
        ctx.save_for_backward(
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
        )
        ctx.batch_sizes = batch_sizes
        ctx.products = products
        return outputs

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
        ) = ctx.saved_tensors
        batch_sizes, products = ctx.batch_sizes, ctx.products
        hidden = outputs.size(1)
        # Over all positions at once, the derivatives that need no gradient
        # from later steps. out = tanh(W_c [h; context]): d pre = d out * (1 -
        # out^2), where d out = the loss's gradient + the next step's (input
        # feeding), added per step below.
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
        gate_slopes[:, hidden : 2 * hidden].mul_(_cells_before(c0, cells, batch_sizes))
        torch.addcmul(
            one, g, g, value=-1, out=gate_slopes[:, 2 * hidden : 3 * hidden]
        ).mul_(i)
        gate_slopes[:, 3 * hidden :].mul_(tanh_cells)
        grad_gates = gate_slopes  # multiplied in place, step by step
        # Every position's d context and d scores, for the gradients of the
        # attention's keys and memory after the loop (_summed_over_steps)
        d_contexts = outputs.new_empty(outputs.size(0), hidden)
        d_all_scores = torch.empty_like(attention)
        # Gradients flowing back from step t+1 into step t's output, h and c.
        grad_feed = grad_h = grad_c = None
        end = outputs.size(0)
        with products.one_thread():
            for n in reversed(batch_sizes):
                rows = slice(end - n, end)
                end -= n
                d_pre = grad_combine_in[rows]
                if grad_feed is not None:
                    m = grad_feed.size(0)
                    d_pre[:m].addcmul_(grad_feed, tanh_slope[rows][:m])
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
                d_c = torch.mul(d_h, cell_slope[rows])
                if grad_c is not None:
                    d_c[:m] += grad_c
                d_gates = grad_gates[rows]
                d_gates.view(n, 4, hidden)[:, :3].mul_(d_c.unsqueeze(1))
                d_gates[:, 3 * hidden :].mul_(d_h)
                d_x = products.gates_back(d_gates)  # (n, 2H): [d feed_{t-1}; d h_{t-1}]
                grad_feed, grad_h = d_x[:, :hidden], d_x[:, hidden:]
                grad_c = d_c.mul_(f[rows])
        # context = weights @ memory and scores = keys @ h at every step: the
        # gradients of memory and keys are each sentence's sums over its steps
        grad_memory = _summed_over_steps(attention, d_contexts, batch_sizes)
        grad_keys = _summed_over_steps(
            d_all_scores, combined_inputs[:, :hidden], batch_sizes
        )
        # The weight gradients, each one product over all positions.
        n_embedded = weight_ih.size(1) - hidden
        needs = ctx.needs_input_grad
        grad_embedded = (
            products.plain(grad_gates, weight_ih[:, :n_embedded]) if needs[0] else None
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
            grad_h.contiguous(),
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


def _tanh(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1, into ``out``. With torch 2.13 on this
    CPU (Zen 4) torch.tanh takes 2.5 ns a number and sigmoid 0.4: 84 vs 28
    us for 64 x 512 (one thread), once per step. The result differs from
    torch.tanh by at most 2e-7 (absolute)."""
    torch.mul(x, 2, out=out)
    return torch.sigmoid(out, out=out).mul_(2).sub_(1)


def _summed_over_steps(weights, values, batch_sizes: list[int]) -> torch.Tensor:
    """For each sentence b, the sum over its steps t of the outer product
    weights[t, b] (S) x values[t, b] (H): (B, S, H) from the packed (N, S)
    and (N, H). One batched product after the loop, instead of adding a
    (B, S, H) outer product at every step (two passes over B x S x H numbers
    a step, for memory's gradient and for the keys')."""
    weights = _time_major(weights, batch_sizes)  # (steps, B, S)
    values = _time_major(values, batch_sizes)  # (steps, B, H)
    return torch.bmm(weights.permute(1, 2, 0), values.transpose(0, 1))


def _time_major(packed: torch.Tensor, batch_sizes: list[int]) -> torch.Tensor:
    """Packed rows (N, D) as (steps, B, D), zeros where a sentence has ended;
    a view when every sentence runs every step."""
    steps, batch = len(batch_sizes), batch_sizes[0]
    if all(n == batch for n in batch_sizes):
        return packed.unflatten(0, (steps, batch))
    sizes = torch.tensor(batch_sizes)
    return pad_packed_sequence(PackedSequence(packed, sizes))[0]


def _cells_before(c0, cells, batch_sizes: list[int]):
    """c_{t-1} for every position (N, H): c0 for step 0, else the cell of the
    same sentence at the previous step (the first rows of that step's)."""
    pieces, start = [c0[: batch_sizes[0]]], 0
    for before, n in zip(batch_sizes, batch_sizes[1:]):
        pieces.append(cells[start : start + n])
        start += before
    return torch.cat(pieces)
