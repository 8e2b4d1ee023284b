"""The examples run as scripts on the built-in corpus and open as notebooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqembed.cli.demo import builtin_pairs, builtin_user_dict, demo_config
from seqembed.nmt.training import train

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The run `seqembed demo` writes, as the examples expect it."""
    run_dir = tmp_path_factory.mktemp("demo")
    config = demo_config(seed_example=False, seed=1, extra=["train.epochs=12"])
    train(config, run_dir, builtin_pairs(), user_dict=builtin_user_dict())
    return run_dir


def run_example(name: str, cwd: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quickstart_trains_translates_and_reads_neighbours(tmp_path):
    out = run_example("quickstart.py", tmp_path, SEQEMBED_EXAMPLE_EPOCHS="3")
    assert (tmp_path / "runs" / "quickstart" / "best.pt").is_file()
    assert "'量子' is not in the src vocabulary" in out
    assert "chance" in out and "unknown:" in out
    again = run_example("quickstart.py", tmp_path)  # loads the saved run
    assert again.splitlines()[1:] == out.splitlines()[1:]


def test_embeddings_and_chance(demo_run, tmp_path):
    out = run_example("embeddings_and_chance.py", tmp_path, SEQEMBED_RUN=str(demo_run))
    assert "tests above chance" in out and "(chance " in out
    assert (demo_run / "figures" / "map-chance.png").stat().st_size > 10_000


def test_before_and_after(demo_run, tmp_path):
    out = run_example("before_and_after.py", tmp_path, SEQEMBED_RUN=str(demo_run))
    assert "mean relative movement" in out and "correlation before/after" in out


def test_without_a_run_the_examples_say_what_to_do(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "before_and_after.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert "runs/demo not found: run `seqembed demo` first" in done.stderr


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_each_example_opens_as_a_notebook(name, tmp_path):
    notebook = tmp_path / "example.ipynb"
    subprocess.run(
        [sys.executable, "-m", "jupytext", "--to", "ipynb", "-o", str(notebook),
         str(EXAMPLES / name)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    kinds = [cell["cell_type"] for cell in cells]
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 4
    assert cells[0]["cell_type"] == "markdown"
