"""Teacher-forced training of the Luong input-feeding decoder, fast on a CPU.

With input feeding, step t's LSTM input holds the attentional vector of step
t-1, so the decoder must run step by step. Run through autograd, every step
records some 25 small operations, and the backward pass computes each weight
gradient once per step (64-row matrix products) and adds it into the
accumulated gradient. Here one ``autograd.Function`` runs the recurrence with
a hand-written backward pass, as cuDNN does for its RNNs:

* only what truly depends on the previous step is computed per step (the
  recurrent half of the LSTM gates, attention, the combine layer, and their
  input gradients); the weight gradients are three large matrix products over
  all steps at the end, and the embedding half of the gates is one product
  over all steps before the loop (outside, in autograd);
* the batch is sorted by target length and step t runs only the sentences
  that are still going (``batch_sizes``, as in a PackedSequence), so padded
  positions cost nothing, here or in the output projection.

The maths is ``Decoder.step_output``'s for one LSTM layer, Luong attention
and input feeding; tests/test_input_feeding.py checks outputs and every
gradient against that step loop.

Under bf16 autocast the matrix products (those autocast would run in bf16:
the LSTM gates, the combine layer, their gradients) run in bf16 with fp32
results, and everything else in fp32, as autocast does it for the step loop.
"""

from __future__ import annotations

import torch

from seqembed import onednn


class _Products:
    """The recurrence's four matrix products, each against a fixed weight:
    ``gates(x, add)`` = x @ recurrent^T + add, ``combine(x)`` = x @ combine^T,
    and for backward ``gates_back(d)`` = d @ recurrent and ``combine_back(d)``
    = d @ combine.

    In float32 on a CPU each weight is reordered once for oneDNN (products of
    64 rows run at ~210 instead of ~120 GFLOP/s with MKL, see onednn.py);
    with ``dtype`` (bf16 under autocast) both sides are cast to it and the
    results are float32; otherwise plain torch.mm.
    """

    def __init__(self, recurrent, combine, rows: int, dtype: torch.dtype | None):
        self.dtype = dtype
        if dtype is not None:  # cast once for forward and backward
            recurrent, combine = recurrent.to(dtype), combine.to(dtype)
            self.weights = [recurrent, combine, recurrent.t(), combine.t()]
        else:
            self.weights = [
                onednn.reorder(w, rows)
                for w in (recurrent, combine, recurrent.t(), combine.t())
            ]

    def _product(self, x, weight, add=None):
        if self.dtype is not None:
            product = torch.mm(x.to(self.dtype), weight.t()).float()
            return product if add is None else add + product
        return onednn.product(x, weight, add=add)

    def gates(self, x, add):
        return self._product(x, self.weights[0], add)

    def combine(self, x):
        return self._product(x, self.weights[1])

    def gates_back(self, grad):
        return self._product(grad, self.weights[2])

    def combine_back(self, grad):
        return self._product(grad, self.weights[3])

    def weight_grad(self, grad, inputs):
        """grad^T @ inputs over all positions (MKL is the faster one here)."""
        if self.dtype is not None:
            return torch.mm(grad.t().to(self.dtype), inputs.to(self.dtype)).float()
        return torch.mm(grad.t(), inputs)


class InputFeedingRecurrence(torch.autograd.Function):
    """The recurrence over a packed, time-major batch.

    Inputs: ``embedded_gates`` (N, 4H), the embedding half of the LSTM gates
    plus both biases for all N real target positions, packed time-major (step
    0's rows, then step 1's, ...); ``h0``, ``c0`` (B, H); ``keys``, ``memory``
    (B, S, H) and ``src_mask`` (B, S), with the batch sorted by target length,
    longest first; ``recurrent_weight`` (4H, 2H), the LSTM weights for [feed;
    h]; ``combine_weight`` (H, 2H); ``batch_sizes``, sentences still going at
    each step; ``product_dtype``, None or autocast's bf16 for the matrix
    products. Output: the attentional vectors (N, H), packed like the input.
    Under autocast the inputs come in as float32 and autocast is off inside.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
    def forward(
        ctx,
        embedded_gates,
        h0,
        c0,
        keys,
        memory,
        src_mask,
        recurrent_weight,
        combine_weight,
        batch_sizes: list[int],
        product_dtype: torch.dtype | None = None,
    ):
        products = _Products(
            recurrent_weight, combine_weight, batch_sizes[0], product_dtype
        )
        n_total, four_h = embedded_gates.shape
        hidden = four_h // 4
        new = embedded_gates.new_empty
        # Per position, what the backward pass needs (all packed like the input).
        step_inputs = new(n_total, 2 * hidden)  # [feed_{t-1}; h_{t-1}]
        activations = new(n_total, four_h)  # sigmoid/tanh of the gates i, f, g, o
        cells_before = new(n_total, hidden)  # c_{t-1}
        tanh_cells = new(n_total, hidden)  # tanh(c_t)
        attention = new(n_total, keys.size(1))  # softmax weights over the source
        combined_inputs = new(n_total, 2 * hidden)  # [h_t; context_t]
        outputs = new(n_total, hidden)  # tanh(W_c [h_t; context_t]), fed back
        h, c = h0.clone(), c0.clone()
        feed = h0.new_zeros(h0.shape)
        not_source = ~src_mask
        start = 0
        for n in batch_sizes:
            rows = slice(start, start + n)
            x = torch.cat([feed[:n], h[:n]], dim=1, out=step_inputs[rows])
            gates = products.gates(x, embedded_gates[rows])
            act = activations[rows]
            torch.sigmoid(gates, out=act)
            torch.tanh(
                gates[:, 2 * hidden : 3 * hidden], out=act[:, 2 * hidden : 3 * hidden]
            )
            i, f, g, o = act.chunk(4, dim=1)
            cells_before[rows] = c[:n]
            c_t = torch.addcmul(f * c[:n], i, g)
            tanh_c = torch.tanh(c_t, out=tanh_cells[rows])
            h_t = torch.mul(o, tanh_c, out=combined_inputs[rows][:, :hidden])
            scores = torch.bmm(keys[:n], h_t.unsqueeze(2)).squeeze(2)  # (n, S)
            scores.masked_fill_(not_source[:n], float("-inf"))
            attention[rows] = torch.softmax(scores, dim=1)
            weights = attention[rows]
            context = torch.bmm(weights.unsqueeze(1), memory[:n]).squeeze(1)
            combined_inputs[rows][:, hidden:] = context
            out = torch.tanh(products.combine(combined_inputs[rows]), out=outputs[rows])
            h[:n], c[:n], feed[:n] = h_t, c_t, out
            start += n
        ctx.save_for_backward(
            step_inputs,
            activations,
            cells_before,
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
            step_inputs,
            activations,
            cells_before,
            tanh_cells,
            attention,
            combined_inputs,
            outputs,
            keys,
            memory,
        ) = ctx.saved_tensors
        batch_sizes, products = ctx.batch_sizes, ctx.products
        hidden = outputs.size(1)
        batch = keys.size(0)
        grad_gates = torch.empty_like(activations)
        grad_combine_in = torch.empty_like(outputs)  # before the combine's tanh
        grad_keys = torch.zeros_like(keys)
        grad_memory = torch.zeros_like(memory)
        # Gradients flowing back from step t+1 into step t's h, c and output.
        grad_h = outputs.new_zeros(batch, hidden)
        grad_c = outputs.new_zeros(batch, hidden)
        grad_feed = outputs.new_zeros(batch, hidden)
        grad_outputs = grad_outputs.contiguous()
        end = outputs.size(0)
        for n in reversed(batch_sizes):
            rows = slice(end - n, end)
            end -= n
            out = outputs[rows]
            # out = tanh(W_c [h; context])
            d_pre = torch.mul(
                grad_outputs[rows] + grad_feed[:n],
                1 - out * out,
                out=grad_combine_in[rows],
            )
            d_combined = products.combine_back(d_pre)  # (n, 2H)
            d_h = d_combined[:, :hidden] + grad_h[:n]
            d_context = d_combined[:, hidden:]
            # context = weights @ memory;  weights = softmax(keys @ h)
            weights = attention[rows]
            h_t = combined_inputs[rows][:, :hidden]
            grad_memory[:n].baddbmm_(weights.unsqueeze(2), d_context.unsqueeze(1))
            d_weights = torch.bmm(memory[:n], d_context.unsqueeze(2)).squeeze(2)
            d_scores = weights * (
                d_weights - (weights * d_weights).sum(dim=1, keepdim=True)
            )
            grad_keys[:n].baddbmm_(d_scores.unsqueeze(2), h_t.unsqueeze(1))
            d_h.add_(torch.bmm(d_scores.unsqueeze(1), keys[:n]).squeeze(1))
            # h = o * tanh(c);  c = f * c_{t-1} + i * g
            i, f, g, o = activations[rows].chunk(4, dim=1)
            tanh_c = tanh_cells[rows]
            d_c = grad_c[:n] + d_h * o * (1 - tanh_c * tanh_c)
            d_gates = grad_gates[rows]
            d_i, d_f, d_g, d_o = d_gates.chunk(4, dim=1)
            torch.mul(d_c * g, i * (1 - i), out=d_i)
            torch.mul(d_c * cells_before[rows], f * (1 - f), out=d_f)
            torch.mul(d_c * i, 1 - g * g, out=d_g)
            torch.mul(d_h * tanh_c, o * (1 - o), out=d_o)
            d_x = products.gates_back(d_gates)  # (n, 2H): [feed_{t-1}; h_{t-1}]
            grad_feed[:n] = d_x[:, :hidden]
            grad_h[:n] = d_x[:, hidden:]
            grad_c[:n] = d_c * f
        # The weight gradients, each one product over all positions.
        grad_recurrent = products.weight_grad(grad_gates, step_inputs)
        grad_combine = products.weight_grad(grad_combine_in, combined_inputs)
        return (
            grad_gates,
            grad_h,
            grad_c,
            grad_keys,
            grad_memory,
            None,
            grad_recurrent,
            grad_combine,
            None,
            None,
        )
