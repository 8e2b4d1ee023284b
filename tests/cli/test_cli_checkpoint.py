"""--checkpoint best|last on every command that reads a run, and the
checkpoint named at the top of every output, as a user runs the CLI."""

import json
import os
import pty
import shutil
import subprocess
import sys

import pytest
from helpers import assert_clean_error, seqembed

from seqembed.cli.main import build_parser


@pytest.fixture(scope="module")
def two_checkpoints(builtin_run, tmp_path_factory):
    """A run whose best.pt is an older model than its last.pt (epoch 10 of
    12), as when validation peaked before training ended."""
    run = tmp_path_factory.mktemp("two") / "run"
    shutil.copytree(builtin_run, run)
    shutil.copyfile(run / "last-2.pt", run / "best.pt")
    return run


def _reading_commands():
    """Every command whose positional argument is a run (RUN)."""
    commands = build_parser().commands.choices
    reading = {}
    for name, parser in commands.items():
        metavars = [a.metavar for a in parser._actions if not a.option_strings]
        if "RUN" in metavars and name == parser.prog.split()[-1]:
            reading[name] = parser
    return reading


def test_every_command_that_reads_a_run_has_the_checkpoint_choice():
    reading = _reading_commands()
    expected = {"translate", "evaluate", "analyze", "neighbours", "plot",
                "attention", "report", "export", "serve"}  # fmt: skip
    assert expected <= set(reading)
    for name, parser in reading.items():
        (action,) = [a for a in parser._actions if "--checkpoint" in a.option_strings]
        assert action.choices == ("best", "last") and action.default == "best", name
        assert "falling back to last.pt" in action.help, name


@pytest.mark.parametrize("command", ["translate", "neighbours", "report", "plot"])
def test_an_unknown_checkpoint_is_a_one_line_usage_error(command, tmp_path):
    result = seqembed(command, tmp_path, "x", "--checkpoint", "nope")
    assert_clean_error(result, "--checkpoint", "'nope'", "best, last")


def _stderr_on_a_terminal(*args):
    """Run seqembed with stderr on a pseudo-terminal: (stdout, stderr)."""
    main, child = pty.openpty()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run(
        [sys.executable, "-m", "seqembed", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=child,
        env=env,
        timeout=300,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert result.returncode == 0
    return result.stdout.decode(), b"".join(chunks).decode()


@pytest.mark.slow
def test_translate_names_the_checkpoint_on_a_terminal_only(two_checkpoints):
    run = two_checkpoints
    best_out, best_err = _stderr_on_a_terminal("translate", run, "今天天气很好")
    last_out, last_err = _stderr_on_a_terminal(
        "translate", run, "今天天气很好", "--checkpoint", "last"
    )
    assert f"seqembed: checkpoint: {run / 'best.pt'} (epoch 10 of 12" in best_err
    assert f"seqembed: checkpoint: {run / 'last.pt'} (epoch 12 of 12" in last_err
    assert "last.pt" not in best_err and "best.pt" not in last_err
    # stdout stays the bare translation, one line, terminal or not
    assert len(best_out.splitlines()) == len(last_out.splitlines()) == 1
    piped = seqembed("translate", run, "今天天气很好", "--checkpoint", "last")
    assert piped.returncode == 0 and piped.stdout == last_out
    assert "checkpoint" not in piped.stderr


@pytest.mark.slow
def test_evaluate_and_neighbours_name_the_checkpoint_read(two_checkpoints, tmp_path):
    run = two_checkpoints
    test = run / "data" / "test.tsv"
    for which, epoch in (("best", 10), ("last", 12)):
        flags = [] if which == "best" else ["--checkpoint", which]
        hyp = tmp_path / f"{which}.hyp"
        scored = seqembed("evaluate", run, test, "--hyp-out", hyp, *flags)
        assert scored.returncode == 0, scored.stderr
        first = scored.stderr.splitlines()[0]
        assert first.startswith(f"seqembed: checkpoint: {run / f'{which}.pt'} ")
        assert f"(epoch {epoch} of 12, valid BLEU " in first
        assert scored.stdout.startswith("BLEU ")
        data = seqembed("evaluate", run, test, "--json", "--hyp-out", hyp,
                        "--force", *flags)  # fmt: skip
        assert json.loads(data.stdout)["checkpoint"] == str(run / f"{which}.pt")
        listed = seqembed("neighbours", run, "天气", "-k", "3", *flags)
        assert listed.returncode == 0, listed.stderr
        assert listed.stderr.startswith(f"seqembed: checkpoint: {run / which}.pt")
        assert listed.stdout.startswith("天气 (src")
        as_json = seqembed("neighbours", run, "天气", "--json", *flags)
        record = json.loads(as_json.stdout)
        assert record["checkpoint"] == str(run / f"{which}.pt")


@pytest.mark.slow
def test_files_written_name_the_checkpoint_they_come_from(two_checkpoints, tmp_path):
    run = two_checkpoints
    for which in ("best", "last"):
        flags = ["--checkpoint", which]
        named = f"seqembed: checkpoint: {run / which}.pt"
        vectors = tmp_path / f"{which}.vec"
        export = seqembed("export", run, "--format", "word2vec", "--out", vectors,
                          *flags)  # fmt: skip
        assert export.returncode == 0, export.stderr
        assert named in export.stderr and export.stdout == f"{vectors}\n"
        plot = seqembed("plot", run, "--projection", "pca", "--out",
                        tmp_path / f"{which}.png", *flags)  # fmt: skip
        assert plot.returncode == 0 and plot.stderr.startswith(named), plot.stderr
        attention = seqembed("attention", run, "我爱你", "--out",
                             tmp_path / f"a-{which}.png", *flags)  # fmt: skip
        assert attention.returncode == 0, attention.stderr
        assert attention.stderr.startswith(named)
    best = (tmp_path / "best.vec").read_text(encoding="utf-8")
    assert best != (tmp_path / "last.vec").read_text(encoding="utf-8")


@pytest.mark.slow
def test_analyze_and_report_name_the_checkpoint(two_checkpoints, tmp_path):
    run = two_checkpoints
    analysis = seqembed("analyze", run, "--checkpoint", "last", "--no-alignment",
                        "--no-contextual", "--no-movement", "--shaped-repeats", "0",
                        "--out-dir", tmp_path / "a")  # fmt: skip
    assert analysis.returncode == 0, analysis.stderr
    assert f"checkpoint: {run / 'last.pt'} (epoch 12 of 12" in analysis.stderr
    data = json.loads((tmp_path / "a" / "analysis.json").read_text(encoding="utf-8"))
    assert data["checkpoint"] == "last.pt"
    assert data["checkpoint_line"].startswith(f"{run / 'last.pt'} (epoch 12 of 12")
    markdown = (tmp_path / "a" / "analysis.md").read_text(encoding="utf-8")
    assert data["checkpoint_line"] in markdown
    shutil.copytree(tmp_path / "a", run / "analysis", dirs_exist_ok=True)
    pages = {}
    for which in ("best", "last"):
        out = tmp_path / f"{which}.html"
        flags = ["--checkpoint", which, "--side", "src", "--samples", "0"]
        made = seqembed("report", run, *flags, "--projection", "pca", "--out", out)
        assert made.returncode == 0, made.stderr
        pages[which] = out.read_text(encoding="utf-8")
    assert "Checkpoint best.pt: the model after epoch 10 of 12" in pages["best"]
    assert "Checkpoint last.pt: the model after epoch 12 of 12" in pages["last"]
    assert "Checkpoint last.pt" not in pages["best"]
