"""Matrix products through oneDNN, which on a CPU beats torch.mm's MKL.

``torch.mm`` and ``F.linear`` on a CPU call MKL's sgemm. For the 64-row
products of a recurrence (64 sentences, one time step) it reaches about 120
GFLOP/s on this machine (2 Zen 4 cores), 60% of its large-matrix rate, with
the weight re-packed on every call. oneDNN, which PyTorch ships for its CPU
LSTM and convolutions, reaches about 210 GFLOP/s on the same product once the
weight is reordered into its blocked layout (bench/speed.py prints both
libraries' rates and times each training product with the faster one).

So a weight used for many products in a row (the decoder's recurrent weights
over the time steps of a batch, or all weights while translating) is
reordered once with ``reorder`` and multiplied with ``product`` (no
autograd); ``InputGradient`` does the same for the backward pass's products
with the untransposed weight. A weight used once is left to MKL: oneDNN
without the reorder is no faster on products whose row count changes every
batch, and a weight that is a strided slice takes it seconds.

Except on a CPU where oneDNN is far ahead of MKL everywhere: MKL keeps to
its AVX2 code on AMD processors, and on Zen 5, whose AVX-512 units are full
width, oneDNN multiplies at twice its rate (2 threads: 480 against 220
GFLOP/s for a (2048, 541) x (541, 1280) weight gradient). ``mm`` and
``weight_gradient``, for the backward passes' products over all positions,
measure both once per process and thread count (``onednn_far_ahead``) and
take oneDNN where it is at least 1.5x faster (Zen 4: about 1.2x on large
products, and slower on weight gradients).

Results are float32 products summed in a different order than MKL's (within
1e-6 relative). Where oneDNN is not available (a build without it, another
device, other dtypes, autocast), everything falls back to ``F.linear``.
"""

from __future__ import annotations

import functools
import os
import time

import torch
import torch.nn.functional as F
from torch import nn


@functools.cache
def available() -> bool:
    """Whether this PyTorch build runs oneDNN's linear, and gets it right."""
    try:
        ops = torch.ops.mkldnn
        # fixed numbers, not torch.randn: the first call must not move the
        # global random stream (a seeded run would depend on who asked first)
        x = torch.linspace(-1, 1, 15).reshape(3, 5)
        weight = torch.linspace(1, -0.5, 20).reshape(4, 5)
        packed = ops._reorder_linear_weight(weight, 3)
        result = ops._linear_pointwise(x, packed, None, "none", [], "")
        return torch.allclose(result, x @ weight.t(), rtol=1e-4, atol=1e-5)
    except (AttributeError, RuntimeError):
        return False


def applies(x: torch.Tensor) -> bool:
    """Whether a product with ``x`` goes through oneDNN: float32 on a CPU,
    outside autocast (under bf16 autocast the products are autocast's)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and available()
    )


def mm(a: torch.Tensor, b: torch.Tensor, use_onednn: bool | None = None):
    """``a @ b`` for 2-D tensors, without autograd: through oneDNN where
    ``use_onednn`` (None: where ``onednn_far_ahead()`` on this CPU), with MKL
    (``torch.mm``) otherwise. Row-major operands and transposed views of
    them are read as they are; others (a column slice) are copied first."""
    if use_onednn is None:
        use_onednn = applies(a) and onednn_far_ahead()
    if not (use_onednn and applies(a) and applies(b)):
        return torch.mm(a, b)
    return torch.ops.mkldnn._linear_pointwise(
        _readable(a), _readable(b.t()), None, "none", [], ""
    )


def weight_gradient(
    grad: torch.Tensor, x: torch.Tensor, use_onednn: bool | None = None
) -> torch.Tensor:
    """``grad.T @ x``, the weight gradient of ``x @ weight.T`` summed over
    the positions (rows) of ``grad`` (n, out) and ``x`` (n, in), as ``mm``.

    Through oneDNN the positions are first zero-padded to one of a few
    lengths (``padded_length``); the zero rows add nothing to the sums. The
    number of positions changes from batch to batch, and oneDNN keeps state
    for every shape it has run (in the C heap, next to freed blocks of the
    results' sizes that the heap then keeps): over the lengths as they came,
    two minutes of default training peaked at 1,512 MiB against MKL's 1,055,
    and at 1,815 after ten. Padded, the heap's live memory stopped growing
    after 400 steps (393 MiB, MKL's 328), and peak RSS was 1,437 MiB after
    two minutes (MKL 1,193 that day) and 1,574 after ten."""
    if use_onednn is None:
        use_onednn = applies(grad) and onednn_far_ahead()
    if not (use_onednn and applies(grad) and applies(x)):
        return torch.mm(grad.t(), x)
    n = grad.size(0)
    padded = padded_length(n)
    grad, x = _zero_padded(grad, padded), _zero_padded(x, padded)
    # oneDNN's linear: a (out, padded) transposed view by a weight (in, padded)
    return torch.ops.mkldnn._linear_pointwise(grad.t(), x.t(), None, "none", [], "")


def padded_length(n: int) -> int:
    """``n`` rounded up to a multiple of an eighth of the power of two
    below it, and of 8: at most 12.5% (or 7 rows) more, eight lengths an
    octave, so Tatoeba's batches (184 to 1,300 target positions) take 24."""
    step = max(8, (1 << (n.bit_length() - 1)) // 8)
    return -(-n // step) * step


def _zero_padded(x: torch.Tensor, rows: int) -> torch.Tensor:
    # a row-major copy (a column slice would be copied anyway, see _readable)
    padded = x.new_empty(rows, x.size(1))
    padded[: x.size(0)] = x
    padded[x.size(0) :] = 0
    return padded


def _readable(x: torch.Tensor) -> torch.Tensor:
    # oneDNN took seconds on a column slice (2.8 s for (541, 2048) x a
    # 256-column slice of a (2048, 1024) weight), none on a transposed view
    return x if x.is_contiguous() or x.t().is_contiguous() else x.contiguous()


PIN = "SEQEMBED_ONEDNN"  # "1" or "0": the answer, with no timing


def onednn_far_ahead() -> bool:
    """Whether oneDNN multiplies at least 1.5x faster than MKL here, with
    the current number of threads, measured once (about 20 ms) on a product
    shaped like a weight gradient. The margin keeps the choice the same from
    run to run on a given machine: Zen 5 measured 2.0-2.2x (2 and 1
    threads); on Zen 4 oneDNN's large products ran at about 1.2x MKL's.

    On a loaded machine a timing near the margin can still come out
    differently in two processes, and then their sums are ordered
    differently: ``SEQEMBED_ONEDNN=1`` (or ``0``) pins the answer for every
    process, so that, for example, an interrupted run resumes bit for bit."""
    pinned = os.environ.get(PIN)
    if pinned in ("0", "1"):
        return pinned == "1" and available()
    return _onednn_far_ahead(torch.get_num_threads())


@functools.cache
def _onednn_far_ahead(threads: int) -> bool:
    if not available():
        return False
    # fixed numbers, as in available(): the global random stream stays put
    a = torch.linspace(-1, 1, 512 * 576).reshape(576, 512).t()  # transposed view
    b = torch.linspace(1, -1, 576 * 1024).reshape(576, 1024)
    seconds = {}
    for use_onednn in (False, True, False, True):  # warm-up, then best of 3
        times = []
        for _ in range(3):
            start = time.perf_counter()
            mm(a, b, use_onednn)
            times.append(time.perf_counter() - start)
        seconds[use_onednn] = min(times)
    return seconds[True] * 1.5 <= seconds[False]


def reorder(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight`` (out, in) in oneDNN's blocked layout for products with
    about ``rows`` rows; the weight itself where oneDNN does not apply. For
    ``product`` only: the result is not an ordinary tensor."""
    if not applies(weight):
        return weight
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), rows)


def product(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "none",
    add: torch.Tensor | None = None,
) -> torch.Tensor:
    """``activation(x @ weight.T + bias + add)`` without autograd.

    ``weight`` is (out, in), plain or from ``reorder``; ``activation`` is
    "none" or "tanh"; ``add`` is an (rows, out) tensor added to the product.
    """
    if not applies(x):
        if weight.is_mkldnn:
            weight = weight.to_dense()
        result = F.linear(x, weight, bias)
        if add is not None:
            result = result + add
        return torch.tanh(result) if activation == "tanh" else result
    ops = torch.ops.mkldnn._linear_pointwise
    if add is None:
        return ops(x, weight, bias, activation, [], "")
    result = ops.binary(x, add, weight, bias, "add")
    return torch.tanh_(result) if activation == "tanh" else result


class InputGradient:
    """``grad @ weight``, the input gradient of ``x @ weight.T`` (``weight``
    (out, in)), for a backward pass that runs it on many ``grad`` of
    ``rows`` rows against one weight, as a recurrence's does at every step.

    oneDNN's linear would need the weight transposed first: a transposing
    copy (1.9 ms for 2048 x 1024 here) and then its reorder (1.4 ms), every
    batch. A 1x1 transposed convolution, the rows being its spatial
    positions, is the same product and reorders the weight as it is
    (0.34 ms); on 64 rows it runs at 206-218 GFLOP/s (linear: 212-225).

    Its reordered weight is made for exactly ``rows`` rows: on other row
    counts oneDNN took ~50 ms a call here (a new kernel each time), so those
    go to MKL (``torch.mm``), as does everything where oneDNN does not apply.
    """

    def __init__(self, weight: torch.Tensor, rows: int):
        self.weight, self.rows = weight.detach(), rows
        self.packed = None
        if applies(weight) and transposed_convolution_available():
            self.packed = _reorder_transposed_convolution(self.weight, rows)

    def __call__(self, grad: torch.Tensor) -> torch.Tensor:
        if self.packed is None or grad.size(0) != self.rows or not applies(grad):
            return torch.mm(grad, self.weight)
        return _transposed_convolution(grad.contiguous(), self.packed)


# A 1x1 convolution's arguments: no padding, stride 1, dilation 1.
_NONE, _ONE = [0, 0], [1, 1]


def _reorder_transposed_convolution(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight`` (out, in) as a (in_channels=out, out_channels=in, 1, 1)
    transposed-convolution weight, reordered for inputs of ``rows`` positions."""
    return torch.ops.mkldnn._reorder_convolution_transpose_weight(
        weight.contiguous()[:, :, None, None],
        _NONE,
        _NONE,
        _ONE,
        _ONE,
        1,
        [1, weight.size(0), rows, 1],
    )


def _transposed_convolution(grad: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    # (rows, out) row-major is a (1, out, rows, 1) channels-last image: no copy
    image = grad.t()[None, :, :, None]
    result = torch.ops.mkldnn._convolution_transpose_pointwise(
        image, packed, None, _NONE, _NONE, _ONE, _ONE, 1, "none", [], ""
    )
    return result[0, :, :, 0].t()  # channels-last again: (rows, in) row-major


@functools.cache
def transposed_convolution_available() -> bool:
    """Whether this PyTorch build runs ``InputGradient``'s oneDNN path, and
    gets it right."""
    if not available():
        return False
    try:
        grad = torch.linspace(-1, 1, 12).reshape(3, 4)
        weight = torch.linspace(1, -0.5, 20).reshape(4, 5)
        packed = _reorder_transposed_convolution(weight, 3)
        result = _transposed_convolution(grad, packed)
        return result.shape == (3, 5) and torch.allclose(
            result, grad @ weight, rtol=1e-4, atol=1e-5
        )
    except (AttributeError, RuntimeError):
        return False


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.linear`` with autograd, the forward product through oneDNN.

    For a large weight used once per batch, like the output projection onto
    the target vocabulary (rows = target positions, changing every batch):
    oneDNN without a reorder runs (600, 512) x (512, 4190) at ~205 GFLOP/s,
    MKL's addmm at ~165. The backward products go through ``mm`` and
    ``weight_gradient``: MKL, as fast there, unless oneDNN is far ahead on
    this CPU. ``x`` of more than two dimensions is multiplied as the rows of
    its last one. Falls back to ``F.linear`` where oneDNN does not apply, and
    for a non-contiguous weight (oneDNN takes seconds on a strided one)."""
    if x.dim() < 2 or not weight.is_contiguous() or not applies(x):
        return F.linear(x, weight, bias)
    # a 2-D x is its own reshape: no copy
    rows = _Linear.apply(x.reshape(-1, x.size(-1)), weight, bias)
    return rows.view(*x.shape[:-1], rows.size(-1))


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, initialisation and hooks) computing
    with ``linear``.

    ``everywhere``: through oneDNN wherever it applies, as for the output
    projection onto the target vocabulary (faster on Zen 4 too). Otherwise
    only where oneDNN is far ahead of MKL (``onednn_far_ahead``), for the
    smaller products of attention (keys, combine layer: (576, 1024) x (1024,
    512), where Zen 4 was not measured to gain) and ``F.linear`` elsewhere."""

    def __init__(self, *args, everywhere: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.everywhere = everywhere

    @classmethod
    def accelerate(cls, linear: nn.Linear, everywhere: bool) -> Linear:
        """``linear`` itself, now a ``Linear``: nothing copied or drawn."""
        linear.__class__ = cls
        linear.everywhere = everywhere
        return linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.everywhere or (applies(x) and onednn_far_ahead()):
            return linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.ops.mkldnn._linear_pointwise(
            _readable(x), weight, bias, "none", [], ""
        )

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_x = mm(grad, weight) if needs[0] else None
        grad_weight = weight_gradient(grad, x) if needs[1] else None
        grad_bias = grad.sum(0) if ctx.has_bias and needs[2] else None
        return grad_x, grad_weight, grad_bias
