"""The matrix products of the input-feeding recurrence (input_feeding.py).

Each step of the recurrence multiplies a few dozen rows (the sentences still
going) with the same two weights, forward and backward; this module keeps
those weights in the form each library multiplies fastest, and runs the
step loop's other, small operations on one thread.
"""

from __future__ import annotations

import contextlib

import torch

from seqembed.nmt.cpu import onednn


class Products:
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
    product on ``step_threads`` (default: all; fewer where the step loop
    runs in parts side by side, input_feeding._Part).
    """

    def __init__(
        self, recurrent, combine, rows: int, dtype: torch.dtype | None,
        step_threads: int | None = None,
    ):  # fmt: skip
        self.dtype = dtype
        self.threads = torch.get_num_threads()
        self.step_threads = step_threads or self.threads
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

    def _on_step_threads(self, product, *args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(self.step_threads)
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
        return self._on_step_threads(self._forward, x, self.weights[0]).add_(add)

    def combine_tanh(self, x):
        return self._on_step_threads(
            self._forward, x, self.weights[1], activation="tanh"
        )

    def gates_back(self, grad):
        return self._on_step_threads(self.input_gradients[0], grad)

    def combine_back(self, grad):
        return self._on_step_threads(self.input_gradients[1], grad)

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
