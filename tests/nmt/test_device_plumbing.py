"""Device plumbing, checked on the CPU: the device choice and its one-line
errors, token-sized batches, gradient accumulation, the GPU step's
sync-free skip, decoding that makes no tensor off the model's device, and
checkpoints written on a GPU loading on a CPU-only machine."""

from __future__ import annotations

import copy
import math
import sys
import zipfile

import pytest
import torch
from helpers import assert_clean_error, seqembed

from seqembed.cli.demo import SEED_PAIRS, demo_config, seed_pairs
from seqembed.config import ModelConfig, load_config
from seqembed.data.batches import collate, epoch_batches, target_tokens
from seqembed.errors import InputError
from seqembed.nmt.build import build_model
from seqembed.nmt.checkpoint import load_checkpoint
from seqembed.nmt.decoding import beam_search, greedy_decode
from seqembed.nmt.devices import cpu_info, describe_device, resolve_device
from seqembed.nmt.evaluation import Translator
from seqembed.nmt.loop import DeviceTally
from seqembed.nmt.rng import rng_state, set_rng_state
from seqembed.nmt.steps import device_step, train_step, training_loss
from seqembed.nmt.training import start_session, train

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
TORCH = torch.__version__


# ---------------------------------------------------------------- the device


def test_cpu_is_the_cpu_and_auto_takes_it_without_a_gpu():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_one_line_naming_the_flag(name):
    with pytest.raises(InputError) as info:
        resolve_device(name)
    assert str(info.value) == (
        f"--device {name}: no CUDA device here (torch {TORCH}); use --device cpu"
    )
    with pytest.raises(InputError) as info:
        resolve_device(name, "train.device")
    assert str(info.value) == (
        f"train.device={name}: no CUDA device here (torch {TORCH}); "
        "use train.device=cpu"
    )


@pytest.mark.skipif(sys.platform == "darwin", reason="MPS may be here")
def test_mps_off_macos_is_one_line():
    with pytest.raises(InputError) as info:
        resolve_device("mps")
    assert str(info.value) == (
        f"--device mps: Apple's MPS is on macOS only (this is {sys.platform}); "
        "use --device cpu"
    )


def test_a_misspelled_device_is_refused_by_the_config_and_the_resolver():
    with pytest.raises(InputError) as info:
        load_config(None, ["train.device=gpu"])
    assert str(info.value) == (
        "--set: train.device must be one of auto, cpu, cuda, cuda:N or mps, got 'gpu'"
    )
    with pytest.raises(InputError, match="decode.device must be one of"):
        load_config(None, ["decode.device=cuda:x"])
    # a device of another machine is a valid setting; resolve_device checks it
    assert load_config(None, ["train.device=cuda:1"]).train.device == "cuda:1"
    with pytest.raises(InputError, match="--device must be one of"):
        resolve_device("cuda:-1")


def test_the_cpu_is_described_by_its_cpu_info():
    assert describe_device(torch.device("cpu")) == f"cpu: {cpu_info().describe()}"


@no_cuda
@pytest.mark.slow
def test_cli_training_on_cuda_without_a_gpu_is_one_line(tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
    result = seqembed(
        "train", corpus, "--out", tmp_path / "run", "--set", "train.device=cuda"
    )
    assert_clean_error(
        result,
        f"train.device=cuda: no CUDA device here (torch {TORCH}); use train.device=cpu",
    )


@pytest.mark.slow
def test_the_first_log_line_of_a_run_names_the_device(tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
    result = seqembed(
        "train", corpus, "--out", tmp_path / "run", "--set", "train.epochs=1",
        "--set", "train.device=cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [x for x in result.stderr.splitlines() if "seqembed." in x or ": " in x]
    first = next(x for x in lines if "device" in x or "model:" in x)
    assert f"device cpu: {cpu_info().describe()}" in first


# ---------------------------------------------------------------- batches


def test_token_batches_hold_every_pair_once_within_the_token_budget():
    generator = torch.Generator().manual_seed(5)
    src = torch.randint(1, 30, (3000,), generator=generator).tolist()
    tgt = torch.randint(1, 30, (3000,), generator=generator).tolist()
    tgt[7] = 400  # longer than the budget: a batch of its own
    ids = [[4] * n for n in tgt]
    batches = epoch_batches(src, tgt, 64, seed=1, epoch=1, batch_tokens=500)
    seen = sorted(i for batch in batches for i in batch)
    assert seen == list(range(3000))
    for batch in batches:
        assert target_tokens(ids, batch) <= 500 or batch == [7]
    # about 500 tokens each: many short pairs or few long ones
    sizes = [len(b) for b in batches if b != [7]]
    assert max(sizes) > 2 * min(sizes) and sum(sizes) / len(sizes) < 64
    again = epoch_batches(src, tgt, 64, seed=1, epoch=1, batch_tokens=500)
    assert list(again) == list(batches)
    assert list(epoch_batches(src, tgt, 64, 1, 2, batch_tokens=500)) != list(batches)


# ---------------------------------------------------------------- steps


def _model_and_pairs(dropout: float = 0.0):
    torch.manual_seed(3)
    config = ModelConfig(emb_size=16, hidden_size=32, dropout=dropout)
    model = build_model(config, 40, 40)
    generator = torch.Generator().manual_seed(4)
    pairs = [
        (
            torch.randint(4, 40, (int(n),), generator=generator).tolist(),
            torch.randint(4, 40, (int(m),), generator=generator).tolist(),
        )
        for n, m in torch.randint(2, 9, (64, 2), generator=generator)
    ]
    return model, pairs


def _batch(pairs):
    return collate([s for s, _ in pairs], [t for _, t in pairs])


def test_accumulating_two_batches_of_32_is_one_step_of_64():
    config = load_config(None, ["train.accumulate=2"])
    criterion = training_loss(0.0)
    model, pairs = _model_and_pairs()
    twin = copy.deepcopy(model)
    whole = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    halves = torch.optim.Adam(twin.parameters(), lr=1e-2, fused=True)
    loss, problem = train_step(model, _batch(pairs), whole, criterion, config)
    parts = [(_batch(pairs[:32]), 1.0), (_batch(pairs[32:]), 1.0)]
    accumulated, problem2 = train_step(twin, parts, halves, criterion, config)
    assert problem is None and problem2 is None
    assert accumulated == pytest.approx(loss, rel=1e-5)
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    # and the step did move the model
    fresh, _ = _model_and_pairs()
    assert not torch.equal(next(fresh.parameters()), next(model.parameters()))


def test_the_gpu_step_without_host_syncs_matches_the_cpu_step_and_skips_on_device():
    config = load_config(None, ["train.precision=fp32"])
    criterion = training_loss(0.0)
    model, pairs = _model_and_pairs()
    twin = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=1e-2, fused=True)
    batch = _batch(pairs)
    loss, _ = train_step(model, batch, optimizer, criterion, config)
    value, skipped = device_step(
        twin, [(batch, 1.0)], twin_optimizer, criterion, config, None, None
    )
    assert isinstance(value, torch.Tensor) and not bool(skipped)
    assert float(value) == pytest.approx(loss, rel=1e-6)
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    # a non-finite loss: the fused Adam skips on its found_inf, nothing moves
    before = copy.deepcopy(twin.state_dict())
    steps = [s["step"].clone() for s in twin_optimizer.state.values()]
    with torch.no_grad():
        twin.decoder.output_projection.bias.fill_(float("nan"))
    before = copy.deepcopy(twin.state_dict())
    value, skipped = device_step(
        twin, [(batch, 1.0)], twin_optimizer, criterion, config, None, None
    )
    assert bool(skipped)
    after = twin.state_dict()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]) or torch.isnan(tensor).all(), name
    assert [s["step"] for s in twin_optimizer.state.values()] == steps


@pytest.mark.slow
def test_token_batches_and_accumulation_train_the_seed_example(tmp_path):
    config = demo_config(
        seed_example=True,
        seed=1,
        extra=["train.batch_tokens=12", "train.accumulate=2", "train.epochs=3"],
    )
    result = train(config, tmp_path / "run", seed_pairs())
    assert result.epochs_done == 3
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    session = start_session(config, tmp_path / "again", seed_pairs(), False, None)
    lengths = session.train_src.lengths, session.train_tgt.lengths
    batches = [
        epoch_batches(*lengths, 64, 1, epoch, batch_tokens=12) for epoch in (1, 2, 3)
    ]
    assert all(len(b) > 1 for b in batches)  # 12 tokens: not all 5 pairs at once
    assert state["counters"]["step"] == sum(math.ceil(len(b) / 2) for b in batches)


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("kernels", ["reference", "auto"])
def test_decoding_creates_no_tensor_off_the_models_device(kernels):
    """With the default device set to ``meta``, a tensor made without
    ``device=`` lands there and cannot meet the model's: decoding must give
    the same hypotheses as with the CPU default."""
    torch.manual_seed(0)
    config = ModelConfig(emb_size=16, hidden_size=32, kernels=kernels)
    model = build_model(config, 30, 30).eval()
    batch = collate([[5, 6, 7, 8], [9, 10], [11]], [[], [], []])
    expected = greedy_decode(model, batch.src, batch.src_lengths, 8, True)
    expected_beam = beam_search(model, batch.src, batch.src_lengths, 3, 8)
    torch.set_default_device("meta")
    try:
        greedy = greedy_decode(model, batch.src, batch.src_lengths, 8, True)
        beam = beam_search(model, batch.src, batch.src_lengths, 3, 8)
    finally:
        torch.set_default_device(None)
    assert [h.tokens for h in greedy] == [h.tokens for h in expected]
    assert [h.score for h in greedy] == [h.score for h in expected]
    assert [h.tokens for h in beam] == [h.tokens for h in expected_beam]
    for hypothesis, reference in zip(greedy, expected):
        assert hypothesis.attention.device == torch.device("cpu")
        assert torch.equal(hypothesis.attention, reference.attention)


def test_translator_from_checkpoint_takes_a_device(seed_run):
    translator = Translator.from_checkpoint(seed_run / "last.pt", device="cpu")
    assert translator.device == torch.device("cpu")
    assert next(translator.model.parameters()).device == torch.device("cpu")
    assert translator.translate("我爱你") == Translator.from_checkpoint(
        seed_run / "last.pt"
    ).translate("我爱你")
    with pytest.raises(InputError, match="--device must be one of"):
        Translator.from_checkpoint(seed_run / "last.pt", device="gpu")


# ---------------------------------------------------------------- checkpoints


def relocate(src, dst, location: str) -> None:
    """``src`` as torch.save would have written it with every storage on
    ``location`` (the zip's pickle names each storage's device)."""
    name = location.encode()
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                as_saved = b"X" + len(name).to_bytes(4, "little") + name
                data = data.replace(b"X\x03\x00\x00\x00cpu", as_saved)
            new.writestr(info.filename, data)


def test_a_checkpoint_saved_on_a_gpu_translates_on_the_cpu(seed_run, tmp_path):
    gpu_saved = tmp_path / "gpu.pt"
    relocate(seed_run / "last.pt", gpu_saved, "cuda:0")
    with zipfile.ZipFile(gpu_saved) as saved:
        pickled = next(n for n in saved.namelist() if n.endswith("/data.pkl"))
        assert b"cuda:0" in saved.read(pickled)
    if not torch.cuda.is_available():  # what torch.load alone makes of it
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(gpu_saved, weights_only=True)
    state = load_checkpoint(gpu_saved)
    assert state["model"]["decoder.output_projection.weight"].device.type == "cpu"
    cpu = Translator.from_checkpoint(seed_run / "last.pt", device="cpu")
    moved = Translator.from_checkpoint(gpu_saved, device="cpu")
    sentences = [zh for zh, _ in SEED_PAIRS]
    assert moved.translate(sentences) == cpu.translate(sentences)


def test_cuda_random_states_of_a_gpu_run_are_kept_and_ignored_without_one():
    state = rng_state()
    assert ("cuda" in state) == (
        torch.cuda.is_available() and torch.cuda.is_initialized()
    )
    saved = {**state, "cuda": [torch.zeros(16, dtype=torch.uint8)] * 9}
    expected = torch.rand(3)
    set_rng_state(saved)  # 9 GPUs' states on a machine without 9: not used
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow
def test_deterministic_algorithms_leave_the_cpu_numbers_as_they_are(tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
    for name, value in (("plain", "false"), ("deterministic", "true")):
        result = seqembed(
            "train", corpus, "--out", tmp_path / name, "--set", "train.epochs=2",
            "--set", f"train.deterministic={value}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    plain = load_checkpoint(tmp_path / "plain" / "last.pt")["model"]
    deterministic = load_checkpoint(tmp_path / "deterministic" / "last.pt")["model"]
    assert all(torch.equal(plain[k], deterministic[k]) for k in plain)


def test_the_gpu_tally_counts_losses_and_skips_as_the_cpu_loop_does(tmp_path):
    config = demo_config(seed_example=True, seed=1)
    session = start_session(config, tmp_path, seed_pairs(), False, None)
    tally = DeviceTally(torch.device("cpu"))
    tally.add(torch.tensor(2.0), torch.tensor(False), 10)
    tally.add(torch.tensor(float("nan")), torch.tensor(True), 7)
    tally.add(torch.tensor(4.0), torch.tensor(False), 30)
    mean, tokens = tally.read(session)
    counters = session.counters
    assert (mean, tokens) == (pytest.approx((2 * 10 + 4 * 30) / 40), 40)
    assert (counters.epoch_loss_sum, counters.epoch_tokens) == (140.0, 40)
    # a good step came in the interval: the row starts again, with this skip
    assert (counters.skipped_steps, counters.nonfinite_in_row) == (1, 1)
    assert tally.steps == 0 and float(tally.loss_sum) == 0.0
    limit = config.train.max_nonfinite_steps
    for _ in range(limit):  # a whole interval of skipped steps: a row
        tally.add(torch.tensor(float("inf")), torch.tensor(True), 5)
    with pytest.raises(InputError, match=f"{limit} steps in a row"):
        tally.read(session)
