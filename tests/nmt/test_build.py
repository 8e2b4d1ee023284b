"""The one seam for the CPU kernels: ``build_model`` and ``model.kernels``.

"reference" is the plain model: no CPU-kernel module, no timing, the same
bits in every process. "auto" swaps in the kernels without drawing a random
number or losing a parameter, a name or a hook. Old checkpoints (without
the key) load with the default."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
import torch
from helpers import assert_same_state
from torch import nn

from seqembed.cli.demo import SEED_EXAMPLE_SETTINGS, SEED_PAIRS
from seqembed.config import ModelConfig
from seqembed.nmt.build import build_model
from seqembed.nmt.checkpoint import load_checkpoint, restore_model
from seqembed.nmt.cpu import onednn

# The seed example, with attention and input feeding so that every kernel
# has something to do in "auto", for 3 epochs.
SETTINGS = [
    *(s for s in SEED_EXAMPLE_SETTINGS if not s.startswith("train.epochs")),
    "train.epochs=3",
    "model.attention=luong",
    "model.input_feed=true",
]

# Trains and translates (greedy, then beam 3) in one process, then prints
# how often the once-per-process timing of oneDNN against MKL ran.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from seqembed.cli.main import main
    from seqembed.nmt.cpu import onednn

    tsv, out, kernels, settings, *sentences = sys.argv[1:]
    sets = [x for s in json.loads(settings) for x in ("--set", s)]
    sets += ["--set", f"model.kernels={kernels}"]
    assert main(["--quiet", "train", tsv, "--out", out, *sets]) == 0
    assert main(["translate", out, *sentences]) == 0
    assert main(["translate", out, "--beam", "3", *sentences]) == 0
    timings = onednn._onednn_far_ahead.cache_info().misses
    print(json.dumps({"timings": timings}), file=sys.stderr)
    """
)


def train_and_translate(tmp_path, name: str, kernels: str):
    tsv = tmp_path / "seed.tsv"
    tsv.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS), "utf-8")
    out = tmp_path / name
    sentences = [zh for zh, _ in SEED_PAIRS]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop(onednn.PIN, None)  # conftest's pin would stand in for the timing
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, tsv, out, kernels, json.dumps(SETTINGS),
         *sentences],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    translations = done.stdout.splitlines()
    assert len(translations) == 2 * len(SEED_PAIRS)
    timings = json.loads(done.stderr.strip().splitlines()[-1])["timings"]
    return out, translations, timings


@pytest.mark.slow
def test_reference_trains_and_translates_without_timing_and_repeats(tmp_path):
    first, translations, timings = train_and_translate(tmp_path, "a", "reference")
    assert timings == 0
    state = load_checkpoint(first / "last.pt")
    assert state["config"]["model"]["kernels"] == "reference"
    assert state["counters"]["epoch"] == 4  # the next one: 3 done
    second, again, timings = train_and_translate(tmp_path, "b", "reference")
    assert timings == 0
    assert_same_state(first / "last.pt", second / "last.pt")
    assert again == translations


@pytest.mark.slow
@pytest.mark.skipif(not onednn.available(), reason="no oneDNN in this build")
def test_auto_times_the_libraries_once(tmp_path):
    # the control for the test above: the counter does count
    _, _, timings = train_and_translate(tmp_path, "auto", "auto")
    assert timings == 1  # one thread count, measured once


def test_a_checkpoint_without_the_key_loads_with_the_default(seed_run):
    state = load_checkpoint(seed_run / "last.pt")
    del state["config"]["model"]["kernels"]  # as checkpoints before the key
    model, config, _, _ = restore_model(state)
    assert config.model.kernels == "auto"
    assert type(model.decoder).__name__ == "FastDecoder"
    for name, value in state["model"].items():
        assert torch.equal(model.state_dict()[name], value), name


def test_reference_has_no_kernel_module_and_auto_swaps_them_in_place():
    config = ModelConfig(emb_size=8, hidden_size=12, attention="luong", dropout=0.2)
    torch.manual_seed(0)
    reference = build_model(replace(config, kernels="reference"), 20, 15)
    kinds = {type(m).__module__ for m in reference.modules()}
    assert not any(kind.startswith("seqembed.nmt.cpu") for kind in kinds)
    assert type(reference.decoder.output_projection) is nn.Linear
    torch.manual_seed(0)
    auto = build_model(config, 20, 15)
    decoder = auto.decoder
    assert type(decoder.output_projection) is onednn.Linear
    assert decoder.output_projection.everywhere
    assert not decoder.combine.everywhere and not decoder.attention.key.everywhere
    assert type(decoder.dropout).__name__ == "Dropout" and decoder.dropout.p == 0.2
    assert type(auto.encoder.dropout).__module__ == "seqembed.nmt.cpu.dropout"
    # the same parameters, drawn the same way
    state = auto.state_dict()
    assert state.keys() == reference.state_dict().keys()
    for name, value in reference.state_dict().items():
        assert torch.equal(state[name], value), name


def test_auto_draws_no_random_number_and_keeps_hooks():
    from seqembed.nmt.cpu.kernels import accelerate
    from seqembed.nmt.model import Seq2Seq

    config = ModelConfig(emb_size=8, hidden_size=12, attention="luong")
    model = Seq2Seq.from_config(config, 20, 15)
    seen = []
    model.decoder.output_projection.register_forward_hook(
        lambda module, inputs, out: seen.append(out.shape)
    )
    parameters = list(model.parameters())
    rng = torch.get_rng_state()
    assert accelerate(model) is model
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(a is b for a, b in zip(model.parameters(), parameters))
    model.decoder.project(torch.ones(2, 12))
    assert seen == [(2, 15)]
