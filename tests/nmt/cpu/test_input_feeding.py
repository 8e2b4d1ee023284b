"""The hand-written input-feeding recurrence (``kernels: auto``) against the
autograd step loop, both the fast decoder's (torch.lstm_cell) and the
reference model's (nn.LSTM), and the real-positions-only loss against the
loss over all padded logits."""

import pytest
import torch

from seqembed.config import ModelConfig
from seqembed.data.batches import collate
from seqembed.data.vocab import PAD
from seqembed.nmt.build import build_model
from seqembed.nmt.cpu.parts import Part
from seqembed.nmt.cpu.products import Products

SRC_VOCAB, TGT_VOCAB = 30, 40


def random_batch(seed: int, n_pairs: int):
    g = torch.Generator().manual_seed(seed)

    def sentences(vocab: int, longest: int):
        lengths = torch.randint(1, longest + 1, (n_pairs,), generator=g)
        return [
            torch.randint(4, vocab, (int(n),), generator=g).tolist() for n in lengths
        ]

    return collate(sentences(SRC_VOCAB, 8), sentences(TGT_VOCAB, 11))


def make_model(dtype=torch.float64, kernels="auto", **overrides):
    """The same initial parameters for either ``kernels``."""
    torch.manual_seed(0)
    settings = dict(
        emb_size=16,
        hidden_size=24,
        attention="luong",
        input_feed=True,
        bidirectional=True,
        dropout=0.0,
        kernels=kernels,
    )
    settings.update(overrides)
    return build_model(ModelConfig(**settings), SRC_VOCAB, TGT_VOCAB).to(dtype)


def loss_and_grads(model, batch, real_only: bool):
    model.zero_grad()
    criterion = torch.nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    if real_only:
        logits, targets = model(
            batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out
        )
        loss = criterion(logits, targets)
    else:
        logits = model.logits(batch.src, batch.src_lengths, batch.tgt_in)
        loss = criterion(logits.reshape(-1, TGT_VOCAB), batch.tgt_out.reshape(-1))
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("loop_kernels", ["auto", "reference"])
@pytest.mark.parametrize(
    "seed, n_pairs, overrides",
    [
        (1, 7, {}),
        (2, 1, {}),  # one sentence
        (3, 12, {"luong_score": "dot"}),
        (4, 9, {"bidirectional": False}),
    ],
)
def test_fast_recurrence_matches_the_step_loop_in_float64(
    seed, n_pairs, overrides, loop_kernels
):
    model = make_model(**overrides)
    assert model.decoder.fast_input_feeding
    batch = random_batch(seed, n_pairs)
    fast_loss, fast = loss_and_grads(model, batch, real_only=True)
    loop_model = make_model(kernels=loop_kernels, **overrides)
    loop_loss, loop = loss_and_grads(loop_model, batch, real_only=False)
    assert fast_loss == pytest.approx(loop_loss, rel=1e-12)
    for name, grad in loop.items():
        scale = grad.abs().max().item() + 1e-30
        error = (fast[name] - grad).abs().max().item()
        assert error <= 1e-10 * scale, name


def test_a_wrong_gradient_is_caught():
    """The comparison above can fail: the step loop with one weight changed
    gives different gradients (a control for the test's tolerance)."""
    model = make_model()
    batch = random_batch(1, 7)
    _, fast = loss_and_grads(model, batch, real_only=True)
    with torch.no_grad():
        model.decoder.combine.weight[0, 0] += 1e-6
    _, loop = loss_and_grads(model, batch, real_only=False)
    error = fast["decoder.lstm.weight_hh_l0"] - loop["decoder.lstm.weight_hh_l0"]
    assert error.abs().max().item() > 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("loop_kernels", ["auto", "reference"])
def test_float32_fast_path_agrees_and_trains(loop_kernels):
    model = make_model(torch.float32, dropout=0.2)
    batch = random_batch(5, 16)
    model.eval()  # no dropout: the two paths draw their masks differently
    fast_loss, fast = loss_and_grads(model, batch, real_only=True)
    loop_model = make_model(torch.float32, loop_kernels, dropout=0.2).eval()
    loop_loss, loop = loss_and_grads(loop_model, batch, real_only=False)
    assert fast_loss == pytest.approx(loop_loss, rel=1e-5)
    for name, grad in loop.items():
        assert torch.allclose(fast[name], grad, rtol=1e-4, atol=1e-6), name
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    first = None
    for _ in range(80):
        optimizer.zero_grad()
        logits, targets = model(
            batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out
        )
        loss = torch.nn.functional.cross_entropy(logits, targets)
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first


def test_recurrence_gives_back_the_thread_count():
    # The step loops run on one thread and the products on all (one_thread):
    # afterwards, and after a failure inside, the count is what it was.
    model = make_model(torch.float32)
    batch = random_batch(6, 9)
    before = torch.get_num_threads()
    threads = 3 if before != 3 else 2
    torch.set_num_threads(threads)
    try:
        loss_and_grads(model, batch, real_only=True)
        assert torch.get_num_threads() == threads
        products = Products(torch.ones(8, 4), torch.ones(2, 4), 3, None)
        with pytest.raises(KeyError), products.one_thread():
            assert torch.get_num_threads() == 1
            assert products.gates(torch.ones(3, 4), torch.zeros(3, 8)).sum() == 96
            assert torch.get_num_threads() == 1
            raise KeyError("a failure inside")
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_two_layers_keep_the_step_loop():
    assert not make_model(num_layers=2).decoder.fast_input_feeding
    assert make_model().decoder.fast_input_feeding
    # the reference model has no such path at all
    assert not hasattr(make_model(kernels="reference").decoder, "fast_input_feeding")


def test_bf16_autocast_fast_path_agrees_with_the_step_loop():
    """Under bf16 autocast the recurrence's products run in bf16: the loss
    and gradients agree with autograd's step loop under the same autocast to
    bf16's precision (and the fast path does not fall back to float32)."""
    model = make_model(torch.float32)
    batch = random_batch(7, 16)
    with torch.autocast("cpu", torch.bfloat16):
        fast_loss, fast = loss_and_grads(model, batch, real_only=True)
        loop_loss, loop = loss_and_grads(model, batch, real_only=False)
    fp32_loss, fp32 = loss_and_grads(model, batch, real_only=True)
    assert fast_loss == pytest.approx(loop_loss, rel=1e-2)
    assert fast_loss != fp32_loss  # bf16 products were used
    for name, grad in loop.items():
        error = (fast[name] - grad).norm() / grad.norm()
        assert error < 0.02, (name, float(error))


@pytest.mark.parametrize("kernels", ["auto", "reference"])
@pytest.mark.parametrize("attention", ["none", "luong", "bahdanau"])
def test_real_positions_only_give_the_same_loss(attention, kernels):
    """Without input feeding, only the projection skips padded positions."""
    model = make_model(attention=attention, input_feed=False, kernels=kernels)
    batch = random_batch(6, 10)
    assert (batch.tgt_out == PAD).any()  # the batch has padding to skip
    fast_loss, fast = loss_and_grads(model, batch, real_only=True)
    full_loss, full = loss_and_grads(model, batch, real_only=False)
    assert fast_loss == pytest.approx(full_loss, rel=1e-12)
    for name, grad in full.items():
        assert torch.allclose(fast[name], grad, rtol=1e-9, atol=1e-12), name


@pytest.mark.parametrize("threads, n_pairs", [(2, 40), (3, 53)])
def test_parts_on_their_own_threads_match_the_step_loop(threads, n_pairs):
    """With T threads and at least T * MIN_SENTENCES sentences the step loops
    run as T parts side by side (every T-th sentence each): the loss and
    every gradient still agree with autograd's step loop, and the thread
    count is given back."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = make_model()
        batch = random_batch(11, n_pairs)
        lengths = (batch.tgt_out != PAD).sum(1).sort(descending=True).values
        sizes = [int((lengths > t).sum()) for t in range(int(lengths[0]))]
        assert len(Part.split(sizes, threads)) == threads
        fast_loss, fast = loss_and_grads(model, batch, real_only=True)
        assert torch.get_num_threads() == threads
        loop_loss, loop = loss_and_grads(
            make_model(kernels="reference"), batch, real_only=False
        )
    finally:
        torch.set_num_threads(before)
    assert fast_loss == pytest.approx(loop_loss, rel=1e-12)
    for name, grad in loop.items():
        torch.testing.assert_close(fast[name], grad, rtol=1e-9, atol=1e-12)
