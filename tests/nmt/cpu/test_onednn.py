"""oneDNN products with reordered weights, and the allocator setting."""

import platform
import subprocess
import sys

import pytest
import torch

from seqembed.nmt.cpu import onednn

needs_onednn = pytest.mark.skipif(
    not onednn.available(), reason="no oneDNN in this build"
)


@needs_onednn
@pytest.mark.parametrize("rows", [64, 63, 17, 1, 320])
def test_reordered_product_equals_matmul(rows):
    torch.manual_seed(rows)
    weight = torch.randn(2048, 1024) / 32
    x, add = torch.randn(rows, 1024), torch.randn(rows, 2048)
    packed = onednn.reorder(weight, 64)
    assert packed.is_mkldnn  # the oneDNN path ran, not the fallback
    expected = x @ weight.t()
    torch.testing.assert_close(
        onednn.product(x, packed), expected, rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        onednn.product(x, packed, add=add), expected + add, rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        onednn.product(x, packed, activation="tanh"),
        torch.tanh(expected),
        rtol=1e-5,
        atol=1e-5,
    )


@needs_onednn
def test_transposed_and_sliced_weights_are_reordered_correctly():
    torch.manual_seed(0)
    full = torch.randn(512, 1280)
    for weight in (full[:, :256], full.t()):  # strided views
        x = torch.randn(40, weight.size(1))
        packed = onednn.reorder(weight, 40)
        torch.testing.assert_close(
            onednn.product(x, packed), x @ weight.t(), rtol=1e-5, atol=1e-4
        )


@pytest.mark.skipif(
    not onednn.transposed_convolution_available(),
    reason="no oneDNN transposed convolution in this build",
)
@pytest.mark.parametrize("rows", [64, 17, 1])
def test_input_gradient_equals_matmul(rows):
    """grad @ weight through a transposed convolution on ``rows`` rows, and
    through MKL on any other row count (a slice of the weight included)."""
    torch.manual_seed(rows)
    full = torch.randn(2048, 1280) / 32
    for weight in (full[:, 256:], full[:512, :1024].contiguous()):
        gradient = onednn.InputGradient(weight, rows)
        assert gradient.packed is not None  # the oneDNN path ran
        for n in (rows, rows + 3):
            grad = torch.randn(n, weight.size(0))
            result = gradient(grad)
            assert result.shape == (n, weight.size(1)) and result.is_contiguous()
            torch.testing.assert_close(result, grad @ weight, rtol=1e-5, atol=1e-4)


def test_input_gradient_of_other_dtypes_is_a_plain_product():
    grad = torch.randn(6, 4, dtype=torch.float64)
    weight = torch.randn(4, 9, dtype=torch.float64)
    gradient = onednn.InputGradient(weight, 6)
    assert gradient.packed is None
    assert torch.equal(gradient(grad), grad @ weight)


def test_other_dtypes_fall_back_to_plain_products():
    x, weight = (
        torch.randn(5, 8, dtype=torch.float64),
        torch.randn(3, 8, dtype=torch.float64),
    )
    packed = onednn.reorder(weight, 5)
    assert packed is weight
    assert torch.equal(onednn.product(x, packed), x @ weight.t())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not onednn.applies(torch.randn(2, 2))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
@needs_onednn
@pytest.mark.parametrize("rows, bias", [(600, True), (7, False)])
def test_linear_matches_f_linear_with_gradients(rows, bias):
    torch.manual_seed(rows)
    weight = (torch.randn(300, 64) / 8).requires_grad_()
    b = torch.randn(300, requires_grad=True) if bias else None
    x = torch.randn(rows, 64, requires_grad=True)
    grad = torch.randn(rows, 300)
    results = []
    for linear in (onednn.linear, torch.nn.functional.linear):
        out = linear(x, weight, b)
        tensors = [x, weight] + ([b] if bias else [])
        results.append([out, *torch.autograd.grad(out, tensors, grad)])
    for ours, reference in zip(*results):
        # float32 sums in another order (the weight gradient's over 600 rows)
        atol = 2e-6 * reference.abs().max().item()
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=atol)
    with torch.profiler.profile() as profile:  # and the oneDNN path ran
        onednn.linear(x, weight, b)
    assert "mkldnn::_linear_pointwise" in {e.key for e in profile.key_averages()}


@needs_onednn
@pytest.mark.parametrize("use_onednn", [True, False])
def test_mm_equals_float64_product_for_every_layout(use_onednn):
    """Row-major operands, transposed views and column slices (as the
    weight gradients pass them), through either library."""
    torch.manual_seed(1)
    grads, inputs = torch.randn(541, 2048), torch.randn(541, 1280)
    weight = torch.randn(2048, 1024)
    cases = [
        (grads.t(), inputs),  # a weight gradient: a transposed view
        (grads.t(), inputs[:, 256:]),  # ... of a column slice
        (grads, weight[:, :256]),  # an input gradient by a column slice
        (inputs[:, :1024], weight.t()),  # a column slice by a transposed view
        (inputs[:7].contiguous(), weight[:1280]),
    ]
    for a, b in cases:
        expected = a.double() @ b.double()
        result = onednn.mm(a, b, use_onednn)
        assert result.shape == expected.shape and result.dtype == torch.float32
        atol = 2e-6 * expected.abs().max().item()
        torch.testing.assert_close(result.double(), expected, rtol=1e-5, atol=atol)


@needs_onednn
@pytest.mark.parametrize("use_onednn", [True, False])
@pytest.mark.parametrize("positions", [541, 512, 7, 1])
def test_weight_gradient_equals_float64_product(use_onednn, positions):
    """Over position counts that are padded (541 -> 576, 7 -> 8) and that
    are not (512, 1), with the column slices the LSTM's gradients pass."""
    torch.manual_seed(positions)
    grads, inputs = torch.randn(positions, 2048), torch.randn(positions, 1280)
    cases = [(grads, inputs), (grads, inputs[:, 256:]), (grads[:, :512], inputs)]
    for grad, x in cases:
        expected = grad.double().t() @ x.double()
        result = onednn.weight_gradient(grad, x, use_onednn)
        assert result.shape == expected.shape and result.dtype == torch.float32
        atol = 2e-6 * expected.abs().max().item()
        torch.testing.assert_close(result.double(), expected, rtol=1e-5, atol=atol)


def test_padded_lengths_are_few_and_waste_little():
    lengths = {onednn.padded_length(n) for n in range(184, 1301)}
    assert len(lengths) == 24  # eight an octave
    for n in range(1, 5000):
        padded = onednn.padded_length(n)
        assert n <= padded <= max(n + 7, n * 1.125) and padded % 8 == 0
    assert [onednn.padded_length(n) for n in (512, 513, 1024)] == [512, 576, 1024]


@needs_onednn
def test_library_choice_is_measured_once_and_leaves_random_numbers_alone(
    monkeypatch,
):
    monkeypatch.delenv(onednn.PIN, raising=False)  # conftest pins it
    threads = torch.get_num_threads()
    onednn._onednn_far_ahead.cache_clear()
    state = torch.get_rng_state()
    choice = onednn.onednn_far_ahead()
    with torch.profiler.profile() as profile:  # mm, when not told, takes it
        onednn.mm(torch.ones(64, 32), torch.ones(32, 16))
    names = {event.name for event in profile.events()}
    assert ("mkldnn::_linear_pointwise" in names) is choice
    assert ("aten::mm" in names) is not choice
    assert torch.equal(torch.get_rng_state(), state)
    assert onednn._onednn_far_ahead.cache_info().currsize == 1
    assert onednn.onednn_far_ahead() is choice  # the cached answer
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        onednn.onednn_far_ahead()  # measured again for another thread count
        assert onednn._onednn_far_ahead.cache_info().currsize == 2
    finally:
        torch.set_num_threads(threads)


def test_mm_of_other_dtypes_is_torch_mm():
    a = torch.randn(5, 3, dtype=torch.float64)
    b = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(onednn.mm(a, b, use_onednn=True), a @ b)


def test_linear_module_is_nn_linear_with_its_hooks():
    torch.manual_seed(0)
    ours = onednn.Linear(16, 40)
    torch.manual_seed(0)
    reference = torch.nn.Linear(16, 40)
    assert ours.state_dict().keys() == reference.state_dict().keys()
    for name, value in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name
    seen = []
    ours.register_forward_hook(lambda module, inputs, out: seen.append(out.shape))
    x = torch.randn(9, 16)
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-6)
    assert seen == [(9, 40)]


@needs_onednn
def test_linear_of_a_batch_of_sequences_with_gradients():
    """3-D inputs (sentences, positions, features), as attention's keys and
    combine layer pass them, contiguous or not: values and gradients match
    F.linear, and the product runs in oneDNN."""
    torch.manual_seed(3)
    weight = (torch.randn(48, 64) / 8).requires_grad_()
    for x in (torch.randn(6, 11, 64), torch.randn(11, 6, 64).transpose(0, 1)):
        x.requires_grad_()
        grad = torch.randn(6, 11, 48)
        results = []
        for linear in (onednn.linear, torch.nn.functional.linear):
            out = linear(x, weight)
            results.append([out, *torch.autograd.grad(out, (x, weight), grad)])
        assert results[0][0].shape == (6, 11, 48)
        for ours, reference in zip(*results):
            atol = 2e-6 * reference.abs().max().item()
            torch.testing.assert_close(ours, reference, rtol=1e-5, atol=atol)
    with torch.profiler.profile() as profile:
        onednn.linear(x, weight)
    assert "mkldnn::_linear_pointwise" in {e.key for e in profile.key_averages()}


@needs_onednn
@needs_onednn
@pytest.mark.parametrize("pinned", ["0", "1"])
def test_a_pinned_choice_is_taken_without_timing(monkeypatch, pinned):
    monkeypatch.setenv(onednn.PIN, pinned)
    onednn._onednn_far_ahead.cache_clear()
    assert onednn.onednn_far_ahead() is (pinned == "1")
    assert onednn._onednn_far_ahead.cache_info().misses == 0
    with torch.profiler.profile() as profile:
        onednn.mm(torch.ones(64, 32), torch.ones(32, 16))
    names = {event.name for event in profile.events()}
    assert ("mkldnn::_linear_pointwise" in names) is (pinned == "1")


@pytest.mark.parametrize("far_ahead", [True, False])
def test_linear_module_not_everywhere_follows_the_measured_choice(
    monkeypatch, far_ahead
):
    monkeypatch.setattr(onednn, "onednn_far_ahead", lambda: far_ahead)
    layer = onednn.Linear(64, 48, bias=False, everywhere=False)
    x = torch.randn(6, 11, 64)
    with torch.profiler.profile() as profile:
        out = layer(x)
    ran = {e.key for e in profile.key_averages()}
    assert ("mkldnn::_linear_pointwise" in ran) is far_ahead
    torch.testing.assert_close(out, x @ layer.weight.t(), rtol=1e-5, atol=1e-5)


def test_linear_falls_back_for_strided_weights_and_other_dtypes():
    weight = torch.randn(64, 40)
    x = torch.randn(5, 32)
    strided = weight[:, :32]  # not contiguous: F.linear, bit for bit
    assert torch.equal(onednn.linear(x, strided), x @ strided.t())
    x64, w64 = x.double(), strided.double().contiguous()
    out = onednn.linear(x64, w64)
    assert out.dtype == torch.float64
    assert torch.equal(out, torch.nn.functional.linear(x64, w64))


def test_checking_for_onednn_leaves_the_random_stream_alone():
    # available() is cached: whichever code asks first (training, a test)
    # must not shift a seeded run's random numbers.
    torch.manual_seed(0)
    onednn.available.__wrapped__()
    after_check = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), after_check)


def test_malloc_thresholds_are_set_in_a_fresh_process():
    # mallopt returns 0 for a parameter glibc does not know; the effect on a
    # training's page faults is printed by bench/speed.py.
    code = (
        "from seqembed.nmt.cpu import allocator; print(allocator.keep_freed_memory())"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "True"


def test_accelerate_turns_an_nn_linear_into_one_in_place():
    """``Linear.accelerate`` (the seam's way in): the same module object,
    parameters and hooks, computing as nn.Linear did."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 40)
    weight, bias = layer.weight, layer.bias
    seen = []
    layer.register_forward_hook(lambda module, inputs, out: seen.append(out.shape))
    x = torch.randn(9, 16)
    before = layer(x)
    assert onednn.Linear.accelerate(layer, everywhere=False) is layer
    assert type(layer) is onednn.Linear and not layer.everywhere
    assert layer.weight is weight and layer.bias is bias
    torch.testing.assert_close(layer(x), before, rtol=1e-5, atol=1e-6)
    assert seen == [(9, 40), (9, 40)]
