"""On a CUDA GPU (skipped elsewhere; bench/gpu_check.sh runs them on one):
training steps in bf16 and fp16, greedy == beam 1, the same translations
as on the CPU, and running out of GPU memory as one line."""

from __future__ import annotations

import copy

import pytest
import torch

from seqembed.cli.demo import SEED_PAIRS, demo_config, seed_pairs
from seqembed.config import ModelConfig, load_config
from seqembed.data.batches import collate
from seqembed.errors import InputError
from seqembed.nmt.build import build_model
from seqembed.nmt.decoding import beam_search, greedy_decode
from seqembed.nmt.evaluation import Translator
from seqembed.nmt.loop import global_step
from seqembed.nmt.session import start_session
from seqembed.nmt.steps import train_step, training_loss

pytestmark = pytest.mark.cuda
GPU = torch.device("cuda")


def _model_and_batch():
    torch.manual_seed(3)
    model = build_model(ModelConfig(emb_size=32, hidden_size=64), 50, 50, GPU)
    generator = torch.Generator().manual_seed(4)
    src = [
        torch.randint(4, 50, (n,), generator=generator).tolist() for n in range(3, 35)
    ]
    tgt = [list(reversed(s)) for s in src]
    return model, collate(src, tgt).to(GPU)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_training_step_in_half_precision_moves_fp32_weights(precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    model, batch = _model_and_batch()
    before = copy.deepcopy(model.state_dict())
    config = load_config(None, [f"train.precision={precision}"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    # fp16: the scaler's first steps may overflow and be skipped; a few steps
    for _ in range(5):
        loss, skipped = train_step(
            model, batch, optimizer, training_loss(0.0), config, scaler=scaler
        )
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    changed = [not torch.equal(before[k], v) for k, v in model.state_dict().items()]
    assert any(changed)


def test_greedy_is_beam_one_on_the_gpu():
    model, batch = _model_and_batch()
    model.eval()
    greedy = greedy_decode(model, batch.src, batch.src_lengths, 20)
    beam = beam_search(model, batch.src, batch.src_lengths, 1, 20, alpha=0.0)
    assert [h.tokens for h in greedy] == [h.tokens for h in beam]


def test_the_seed_example_translates_the_same_on_cpu_and_gpu(seed_run):
    sentences = [zh for zh, _ in SEED_PAIRS]
    path = seed_run / "last.pt"
    cpu = Translator.from_checkpoint(path, device="cpu", precision="fp32")
    gpu = Translator.from_checkpoint(path, device="cuda", precision="fp32")
    assert next(gpu.model.parameters()).device.type == "cuda"
    assert gpu.translate(sentences) == cpu.translate(sentences)
    assert gpu.translate(sentences, beam_size=5) == cpu.translate(
        sentences, beam_size=5
    )


def test_running_out_of_gpu_memory_is_one_line_naming_the_batch_size(tmp_path):
    config = demo_config(seed_example=True, seed=1, extra=["train.device=cuda"])
    session = start_session(config, tmp_path, seed_pairs(), False, None)
    index = list(range(len(session.train_src))) * 20_000  # one huge batch
    torch.cuda.synchronize()
    room = torch.cuda.memory_reserved() + 2**20
    total = torch.cuda.get_device_properties(GPU).total_memory
    torch.cuda.set_per_process_memory_fraction(room / total)
    try:
        with pytest.raises(InputError) as info:
            global_step(session, session.model, index, training_loss(0.0))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    message = str(info.value)
    assert "out of memory on cuda:0 at epoch 1, batch 1" in message
    assert "train.batch_size=" in message and "smaller train.batch_tokens" in message
    assert "\n" not in message


def test_training_on_the_gpu_learns_the_seed_example(tmp_path):
    """The design's experiment on the GPU, in its default precision (bf16,
    or fp16 with a scaler): all five pairs learnt, resumable on the CPU."""
    from seqembed.nmt.training import train

    config = demo_config(seed_example=True, seed=2, extra=["train.device=cuda"])
    result = train(config, tmp_path, seed_pairs())
    assert result.final_metrics["train_loss"] < 0.1
    translator = Translator.from_checkpoint(tmp_path / "last.pt", device="cpu")
    assert translator.translate([zh for zh, _ in SEED_PAIRS]) == [
        en for _, en in SEED_PAIRS
    ]
