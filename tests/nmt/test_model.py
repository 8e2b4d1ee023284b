"""The model's properties, each for both ``model.kernels``: the reference
model (nmt.model) and the one with the fast CPU kernels (nmt.cpu)."""

import random

import pytest
import torch
from torch import nn

from seqembed.config import ModelConfig
from seqembed.data.batches import collate
from seqembed.data.vocab import PAD
from seqembed.nmt.build import build_model

SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
TGT = [[4, 5, 6], [7, 8, 9, 10, 11], [12]]


KERNELS = ["reference", "auto"]


def make(attention="luong", bidirectional=True, input_feed=False, num_layers=1, **kw):
    """The same initial parameters for either ``kernels`` (in ``kw``)."""
    torch.manual_seed(0)
    config = ModelConfig(
        emb_size=16,
        hidden_size=24,
        num_layers=num_layers,
        dropout=0.0,
        bidirectional=bidirectional,
        attention=attention,
        input_feed=input_feed,
        **kw,
    )
    return build_model(config, 20, 15).eval()


ALL = [
    dict(attention="none", bidirectional=False),
    dict(attention="none", bidirectional=True, num_layers=2),
    dict(attention="luong"),
    dict(attention="luong", luong_score="dot"),
    dict(attention="luong", input_feed=True),
    dict(attention="bahdanau", num_layers=2),
]


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("kw", ALL)
def test_logit_shapes(kw, kernels):
    batch = collate(SRC, TGT)
    model = make(**kw, kernels=kernels)
    logits = model.logits(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.shape == (3, batch.tgt_in.size(1), 15)
    real, targets = model(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
    n_real = int((batch.tgt_out != PAD).sum())
    assert real.shape == (n_real, 15) and targets.shape == (n_real,)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("kw", ALL)
@pytest.mark.parametrize("teacher_forcing", [1.0, 0.5])
def test_forward_gives_the_real_positions_of_the_padded_logits(
    kw, kernels, teacher_forcing
):
    """forward returns one type: (logits, targets) of the real positions,
    the padded logits' real rows (in some order), with or without scheduled
    sampling, and the same loss."""
    model = make(**kw, kernels=kernels)
    batch = collate(SRC, TGT)
    args = batch.src, batch.src_lengths, batch.tgt_in
    with torch.no_grad():
        random.seed(1)  # scheduled sampling makes the same choices
        padded = model.logits(*args, teacher_forcing)
        random.seed(1)
        real, targets = model(*args, batch.tgt_out, teacher_forcing)
    mask = batch.tgt_out != PAD
    assert sorted(targets.tolist()) == sorted(batch.tgt_out[mask].tolist())
    loss = nn.functional.cross_entropy(real, targets, reduction="sum")
    padded_loss = nn.functional.cross_entropy(
        padded.reshape(-1, 15), batch.tgt_out.reshape(-1), ignore_index=PAD,
        reduction="sum",
    )  # fmt: skip
    torch.testing.assert_close(loss, padded_loss, rtol=1e-5, atol=1e-5)
    rows = sorted(map(tuple, real.round(decimals=4).tolist()))
    assert rows == sorted(map(tuple, padded[mask].round(decimals=4).tolist()))


@pytest.mark.parametrize("kernels", KERNELS)
def test_embeddings_use_padding_index_zero(kernels):
    model = make(kernels=kernels)
    for embedding in (model.encoder.embedding, model.decoder.embedding):
        assert embedding.padding_idx == PAD
        assert torch.all(embedding.weight[PAD] == 0)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("kw", ALL)
def test_packing_matches_no_packing(kw, kernels):
    """A sentence encoded alone equals the same sentence inside a padded batch,
    and the decoder's output for it does not depend on the padding."""
    model = make(**kw, kernels=kernels)
    batch = collate(SRC, TGT)
    with torch.no_grad():
        together = model.logits(batch.src, batch.src_lengths, batch.tgt_in)
        for row in range(len(SRC)):
            alone = collate([SRC[row]], [TGT[row]])
            single = model.logits(alone.src, alone.src_lengths, alone.tgt_in)
            steps = len(TGT[row]) + 1
            torch.testing.assert_close(
                together[row, :steps], single[0, :steps], atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("kw", [k for k in ALL if k["attention"] != "none"])
def test_attention_gives_padding_no_weight(kw, kernels):
    model = make(**kw, kernels=kernels)
    batch = collate(SRC, TGT)
    with torch.no_grad():
        source, state = model.encode(batch.src, batch.src_lengths)
        _, _, weights = model.decoder.step(batch.tgt_in[:, 0], state, source)
    assert weights.shape == (3, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~source.src_mask] == 0)


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("kw", [dict(attention="none"), dict(attention="luong")])
def test_parallel_decoder_equals_step_by_step(kw, kernels):
    model = make(**kw, kernels=kernels)
    batch = collate(SRC, TGT)
    with torch.no_grad():
        fused = model.logits(batch.src, batch.src_lengths, batch.tgt_in)
        source, state = model.encode(batch.src, batch.src_lengths)
        steps = []
        for t in range(batch.tgt_in.size(1)):
            logits, state, _ = model.decoder.step(batch.tgt_in[:, t], state, source)
            steps.append(logits)
    torch.testing.assert_close(fused, torch.stack(steps, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kernels", ["reference", pytest.param("auto", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize(
    "kw", ALL[:1] + [pytest.param(kw, marks=pytest.mark.slow) for kw in ALL[1:]]
)
def test_a_batch_can_be_overfitted(kw, kernels):
    model = make(**kw, kernels=kernels).train()
    batch = collate(SRC, TGT)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    for _ in range(250):
        optimizer.zero_grad()
        logits = model.logits(batch.src, batch.src_lengths, batch.tgt_in)
        loss = criterion(logits.reshape(-1, 15), batch.tgt_out.reshape(-1))
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize("kernels", KERNELS)
def test_bidirectional_final_state_has_decoder_size(kernels):
    model = make(attention="none", bidirectional=True, num_layers=2, kernels=kernels)
    batch = collate(SRC, TGT)
    source, (h, c, feed) = model.encode(batch.src, batch.src_lengths)
    assert h.shape == c.shape == (2, 3, 24)
    assert source.memory.shape == (3, 5, 24)
    assert feed is None


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("kw", ALL)
def test_training_step_path_equals_decoding_path(kw, kernels):
    """With the CPU kernels, decoder steps with gradients on go through
    torch.lstm_cell; without, through nn.LSTM or oneDNN's reordered weights
    (the reference model takes nn.LSTM both times). Each must compute the
    same function."""
    model = make(**kw, kernels=kernels)  # eval mode: no dropout
    batch = collate(SRC, TGT)
    source, state = model.encode(batch.src, batch.src_lengths)
    with torch.enable_grad():
        cell, cell_state, _ = model.decoder.step(batch.tgt_in[:, 0], state, source)
    with torch.no_grad():
        fused, fused_state, _ = model.decoder.step(batch.tgt_in[:, 0], state, source)
    torch.testing.assert_close(cell, fused, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cell_state[0], fused_state[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw", ALL)
def test_the_kernels_compute_the_reference_function(kw):
    """The contract between the two ``kernels``: the same initial parameters
    (the kernels draw no random number), and in float32 the same real-position
    loss, gradients and decoding steps, within float rounding."""
    models = {kernels: make(**kw, kernels=kernels) for kernels in KERNELS}
    reference, auto = models["reference"], models["auto"]
    for name, value in reference.state_dict().items():
        assert torch.equal(auto.state_dict()[name], value), name
    batch = collate(SRC, TGT)
    args = batch.src, batch.src_lengths, batch.tgt_in
    results = {}
    for kernels, model in models.items():
        logits, targets = model(*args, batch.tgt_out)
        loss = nn.functional.cross_entropy(logits, targets, reduction="sum")
        loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        with torch.no_grad():
            source, state = model.encode(batch.src, batch.src_lengths)
            steps = model.decoder.step(batch.tgt_in[:, 0], state, source)
        results[kernels] = loss, grads, steps
    (loss, grads, steps), (fast_loss, fast_grads, fast_steps) = results.values()
    torch.testing.assert_close(fast_loss, loss, rtol=1e-5, atol=1e-5)
    for name, grad in grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-5)
    (fast_logits, (fast_h, fast_c, _), _), (logits, (h, c, _), _) = fast_steps, steps
    for fast, plain in ((fast_logits, logits), (fast_h, h), (fast_c, c)):
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", ALL)
def test_the_kernels_give_the_reference_gradients_in_float64(kw):
    """In float64 the two ``kernels`` agree to 1e-10 of each gradient's
    scale: a wrong derivative in a kernel could not hide in float32 noise."""
    grads = {}
    for kernels in KERNELS:
        model = make(**kw, kernels=kernels).double()
        batch = collate(SRC, TGT)
        logits, targets = model(
            batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out
        )
        nn.functional.cross_entropy(logits, targets, reduction="sum").backward()
        grads[kernels] = {n: p.grad for n, p in model.named_parameters()}
    for name, grad in grads["reference"].items():
        scale = grad.abs().max().item() + 1e-30
        assert (grads["auto"][name] - grad).abs().max().item() <= 1e-10 * scale, name
