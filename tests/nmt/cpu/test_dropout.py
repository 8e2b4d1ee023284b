"""seqembed's CPU dropout: nn.Dropout's behaviour with a cheaper mask."""

import pytest
import torch

from seqembed.nmt.cpu.dropout import Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.2, 0.3, 0.5, 0.9])
def test_keep_rate_and_scale_are_unbiased(p):
    torch.manual_seed(1)
    keep, scale = keep_mask(torch.Size([2000, 1001]), p)  # odd size: a half left
    assert keep.shape == (2000, 1001) and keep.dtype == torch.bool
    rate = keep.float().mean().item()
    assert rate == pytest.approx(1 - p, abs=2e-3)  # 2M draws: sd ~3e-4
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)
    # the drop rate is threshold / 65536, and the scale its exact inverse
    assert (1 - round(p * 65536) / 65536) * scale == pytest.approx(1.0, abs=1e-12)


def test_the_two_halves_of_a_draw_are_independent():
    torch.manual_seed(2)
    keep, _ = keep_mask(torch.Size([2_000_000]), 0.5)
    first, second = keep[0::2].float(), keep[1::2].float()
    both = (first * second).mean().item()
    assert both == pytest.approx(0.25, abs=3e-3)


def test_forward_and_backward_use_one_mask():
    torch.manual_seed(3)
    x = (torch.rand(300, 70) + 0.5).requires_grad_()  # no zeros
    out = dropout(x, 0.3)
    out.sum().backward()
    kept = out != 0
    assert 0.6 < kept.float().mean().item() < 0.8
    scale = 1 / (1 - round(0.3 * 65536) / 65536)
    assert torch.allclose(out[kept], x[kept] * scale)
    assert torch.equal(x.grad, kept.float() * scale)
    torch.testing.assert_close(
        out.double().mean(), x.double().mean(), atol=0.02, rtol=0
    )


def test_seeded_runs_repeat_and_modes_behave_like_nn_dropout():
    x = torch.randn(64, 33)
    layer = Dropout(0.25)
    torch.manual_seed(4)
    first = layer(x)
    torch.manual_seed(4)
    assert torch.equal(layer(x), first)
    assert not torch.equal(first, x)
    layer.eval()
    assert layer(x) is x
    assert Dropout(0.0)(x) is x
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
    assert dict(layer.state_dict()) == {}
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(1.5)


def test_float64_and_bf16_keep_their_dtype():
    for dtype in (torch.float64, torch.bfloat16):
        x = torch.ones(40, 40, dtype=dtype, requires_grad=True)
        out = dropout(x, 0.2)
        assert out.dtype == dtype
        out.sum().backward()
        assert x.grad.dtype == dtype


def test_accelerate_swaps_nn_dropout_for_it():
    """The seam (nmt.cpu.kernels.accelerate) turns a model's nn.Dropout modules into
    this Dropout with the same p, and draws no random number doing so."""
    from seqembed.config import ModelConfig
    from seqembed.nmt.cpu.kernels import accelerate
    from seqembed.nmt.model import Seq2Seq

    model = Seq2Seq.from_config(ModelConfig(emb_size=8, hidden_size=12), 20, 15)
    assert type(model.encoder.dropout) is torch.nn.Dropout
    rng = torch.get_rng_state()
    accelerate(model)
    assert torch.equal(torch.get_rng_state(), rng)
    for layer in (model.encoder.dropout, model.decoder.dropout):
        assert type(layer) is Dropout and layer.p == 0.3
    model.eval()
    x = torch.randn(4, 8)
    assert model.encoder.dropout(x) is x
