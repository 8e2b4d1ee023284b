"""Shared fixtures: the real Tatoeba file (skipped when absent) and small
trained runs, built once per session on the toy and built-in corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from seqembed.cli.demo import builtin_pairs, builtin_user_dict, demo_config, seed_pairs
from seqembed.nmt.cpu import onednn
from seqembed.nmt.training import train

# Tests share the 2 cores with whatever else runs; spinning OpenMP threads
# would make them several times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)
# The oneDNN-or-MKL choice of the kernels (model.kernels: auto), measured
# once here and pinned for every process the tests start: a timing near its
# margin on a loaded machine could otherwise differ between the two halves of
# a run that a test interrupts and resumes, and the sums with it.
os.environ.setdefault(onednn.PIN, str(int(onednn.onednn_far_ahead())))

TATOEBA = (
    Path(__file__).resolve().parents[2] / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv"
)


@pytest.fixture(scope="session")
def tatoeba_tsv() -> Path:
    if not TATOEBA.is_file():
        pytest.skip(f"shared Tatoeba data not found at {TATOEBA}")
    return TATOEBA


@pytest.fixture(scope="session")
def seed_run(tmp_path_factory) -> Path:
    """The design document's experiment, trained once (seed 1)."""
    run_dir = tmp_path_factory.mktemp("seed-run")
    train(demo_config(seed_example=True, seed=1), run_dir, seed_pairs())
    return run_dir


@pytest.fixture(scope="session")
def builtin_run(tmp_path_factory) -> Path:
    """A short attention run on the built-in corpus (raw Chinese, jieba)."""
    run_dir = tmp_path_factory.mktemp("builtin-run")
    config = demo_config(seed_example=False, seed=3, extra=["train.epochs=12"])
    train(config, run_dir, builtin_pairs(), user_dict=builtin_user_dict())
    return run_dir


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "bf16: needs a CPU with native bfloat16 (skipped elsewhere)"
    )
    config.addinivalue_line(
        "markers", "cuda: needs a CUDA GPU (skipped elsewhere; bench/gpu_check.sh)"
    )
    # `pytest -m "not slow"` is the developer's loop (under 3 minutes on 2
    # busy cores); CI and `pytest` run everything.
    config.addinivalue_line(
        "markers",
        "slow: over about 2 s on 2 busy cores (training runs, the CLI in a "
        "subprocess, distributed, the browser): left out by -m 'not slow'",
    )


def pytest_collection_modifyitems(config, items):
    # bf16 autocast is refused on a CPU without native bf16 (seqembed.nmt.devices):
    # on an AVX2-only host these tests skip, and test_devices checks the refusal.
    from seqembed.nmt.devices import cpu_info

    if not torch.cuda.is_available():
        no_gpu = pytest.mark.skip(reason=f"no CUDA device (torch {torch.__version__})")
        for item in items:
            if item.get_closest_marker("cuda"):  # not a test id that says cuda
                item.add_marker(no_gpu)
    if cpu_info().native_bf16:
        return
    skip = pytest.mark.skip(reason=f"no native bf16 on this CPU ({cpu_info()})")
    for item in items:
        if "bf16" in item.keywords and not item.get_closest_marker("cuda"):
            item.add_marker(skip)
