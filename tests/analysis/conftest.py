"""Real analyses of the session's runs, made once for every test file here:
the seed example, the built-in run, and the seed run without its initial
embeddings and snapshots."""

import shutil

import pytest
import torch
from analysed import BUILTIN_SETTINGS, SEED_SETTINGS

from seqembed.analysis.run import analyze_run


@pytest.fixture(scope="session")
def seed_result(seed_run) -> dict:
    return analyze_run(seed_run, SEED_SETTINGS)


@pytest.fixture(scope="session")
def builtin_result(builtin_run) -> dict:
    return analyze_run(builtin_run, BUILTIN_SETTINGS)


@pytest.fixture(scope="session")
def bare_result(seed_run, tmp_path_factory) -> dict:
    """The seed run without its initial embeddings and per-epoch snapshots:
    every initial_* figure and the movement sections are null."""
    run_dir = tmp_path_factory.mktemp("bare") / "run"
    shutil.copytree(seed_run, run_dir, ignore=shutil.ignore_patterns("embeddings"))
    for name in ("best.pt", "last.pt"):
        path = run_dir / name
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            state.pop("initial_embeddings", None)
            torch.save(state, path)
    return analyze_run(run_dir, SEED_SETTINGS)
