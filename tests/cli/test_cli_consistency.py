"""The command line as one consistent tool, in subprocesses as a user runs it:
number ranges, unknown words, both spellings, one flag name per concept,
global flags anywhere, "did you mean", help everywhere, one overwrite policy,
progress on a terminal only."""

import argparse
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import threading

import pytest
from helpers import assert_clean_error, seqembed

from seqembed.cli.main import build_parser
from seqembed.nmt.checkpoint import load_checkpoint, load_tables

# ------------------------------------------------------------ number ranges


@pytest.mark.parametrize(
    "args, message",
    [
        (["translate", "RUN", "--beam", "0", "x"], "--beam must be at least 1 (got 0)"),
        (["translate", "RUN", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["evaluate", "RUN", "t.tsv", "--beam", "-2"], "--beam must be at least 1"),
        (["neighbours", "RUN", "爱", "-k", "0"], "-k must be at least 1 (got 0)"),
        (["analyze", "RUN", "--top", "0"], "--top must be at least 1"),
        (["analyze", "RUN", "--min-freq", "-1"], "--min-freq must be at least 0"),
        (["analyze", "RUN", "--permutations", "999"], "--permutations must be at "
         "least 1000"),
        (["analyze", "RUN", "--alpha", "1.5"], "--alpha must be between 0 and 1, "
         "exclusive (got 1.5)"),
        (["analyze", "RUN", "--k-std", "0"], "--k-std must be above 0"),
        (["plot", "RUN", "--perplexity", "0"], "--perplexity must be above 0"),
        (["plot", "RUN", "--labels", "-1"], "--labels must be at least 0"),
        (["plot", "RUN", "--frames", "1"], "--frames must be at least 2"),
        (["report", "RUN", "--max-words", "0"], "--max-words must be at least 1"),
        (["report", "RUN", "--samples", "-1"], "--samples must be at least 0"),
        (["export", "RUN", "--format", "word2vec", "--min-freq", "-3"],
         "--min-freq must be at least 0"),
        (["train", "c.tsv", "--out-dir", "r", "--epochs", "0"],
         "--epochs must be at least 1"),
        (["train", "c.tsv", "--out-dir", "r", "--max-minutes", "-1"],
         "--max-minutes must be above 0"),
    ],
)  # fmt: skip
def test_numbers_out_of_range_name_the_flag_and_its_range(args, message):
    result = seqembed(*args)
    assert_clean_error(result, message)
    assert result.stderr.startswith(f"seqembed {args[0]}: error: ")


# ------------------------------------------------------------ unknown words


def test_translate_names_unknown_source_words_on_stderr(seed_run):
    lines = ["量子 计算机 改变 世界", "今天 天气 很 好", "量子 量子 爱"]
    result = seqembed("translate", seed_run, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3  # one translation per line
    notes = result.stderr.strip().splitlines()
    assert notes == [
        "seqembed: line 1: 2 unknown source words: 量子, 计算机",
        "seqembed: line 3: 1 unknown source word: 量子",
    ]
    quiet = seqembed("translate", seed_run, "--quiet", stdin="\n".join(lines))
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout == result.stdout


def test_translate_unknown_words_as_the_run_segments_them(builtin_run):
    result = seqembed("translate", builtin_run, "量子计算机改变了世界")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    note = result.stderr.strip().splitlines()[-1]
    assert note.startswith("seqembed: line 1: ") and "unknown source word" in note
    assert "量子" in note and "计算机" in note
    known = seqembed("translate", builtin_run, "今天天气很好")
    assert known.returncode == 0 and "unknown" not in known.stderr


# ---------------------------------------------------------------- spellings


def test_both_spellings_of_analyse_and_neighbours(seed_run):
    british = seqembed("neighbours", seed_run, "爱", "-k", "3", "--json")
    american = seqembed("neighbors", seed_run, "爱", "-k", "3", "--json")
    assert american.returncode == 0, american.stderr
    assert json.loads(american.stdout) == json.loads(british.stdout)
    assert seqembed("analyse", "--help").returncode == 0
    listing = seqembed("--help").stdout
    assert re.search(r"^\s+analyze\s", listing, re.M)
    assert re.search(r"^\s+neighbours", listing, re.M)
    assert "analyse" not in listing and "neighbors" not in listing


def test_the_colour_spelling_is_accepted(seed_run, tmp_path):
    out = tmp_path / "m.png"
    result = seqembed("plot", seed_run, "--projection", "pca", "--colour",
                      "frequency", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "coloured by frequency" in result.stderr


# ----------------------------------------------------- one name per concept


def _help(command: str) -> str:
    result = seqembed(command, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


def _side_choices(text: str) -> str:
    return re.search(r"--side \{([a-z,]+)\}", text).group(1)


def test_one_flag_name_per_concept_old_names_hidden():
    helps = {c: _help(c) for c in ("analyze", "neighbours", "export", "plot",
                                   "report", "train", "demo", "attention")}  # fmt: skip
    for command in ("plot", "report"):
        assert "--projection" in helps[command] and "--method" not in helps[command]
    for command in ("analyze", "plot", "report"):
        assert "--seed N" in helps[command] and "--random-state" not in helps[command]
    for command in ("analyze", "neighbours", "export", "plot"):
        assert "--specials, --no-specials" in helps[command]
        assert "--include-specials" not in helps[command]
    for command in ("analyze", "neighbours", "plot", "report"):
        assert _side_choices(helps[command]) == "src,tgt,both"
    assert _side_choices(helps["export"]) == "src,tgt,both,out"
    for command in ("analyze", "neighbours", "export", "plot", "report"):
        assert "--min-freq N" in helps[command]
    # --out names a file, --out-dir a folder.
    for command in ("train", "demo", "analyze"):
        assert "--out-dir DIR" in helps[command] and "--out " not in helps[command]
    for command in ("plot", "attention", "report"):
        assert "--out FILE" in helps[command] and "--out-dir" not in helps[command]


def test_old_flag_names_still_work(seed_run, tmp_path):
    result = seqembed(
        "plot", seed_run, "--method", "pca", "--random-state", "2",
        "--no-specials", "--out", tmp_path / "m.png",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "18 tokens, PCA" in result.stderr  # 21 with the specials
    listing = seqembed("neighbours", seed_run, "爱", "-k", "30", "--include-specials")
    assert listing.returncode == 0 and "<EOS>" in listing.stdout
    plain = seqembed("neighbours", seed_run, "爱", "-k", "30")
    assert plain.returncode == 0 and "<EOS>" not in plain.stdout


def test_report_min_freq_leaves_rare_words_off_the_map(seed_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(seed_run, run)
    out = tmp_path / "r.html"
    result = seqembed("report", run, "--side", "src", "--projection", "pca",
                      "--min-freq", "2", "--samples", "0", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S)[1])
    table = load_tables(load_checkpoint(run / "last.pt"))["src"].words()
    frequent = [t for t, f in zip(table.tokens, table.freqs) if f >= 2]
    assert 1 < len(frequent) < len(table)
    assert sorted(data["map"]["src"]["words"]) == sorted(frequent)


# ------------------------------------------------------ global flags anywhere


def test_quiet_and_debug_work_after_the_command(seed_run, tmp_path):
    result = seqembed("translate", seed_run, "--quiet", "量子 爱")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and result.stderr == ""
    traced = seqembed("train", tmp_path / "nope.tsv", "--out-dir", tmp_path / "r",
                      "--debug")  # fmt: skip
    assert traced.returncode != 0 and "Traceback" in traced.stderr


# ------------------------------------------------------------ did you mean


@pytest.mark.parametrize(
    "args, hint",
    [
        (["tranlsate", "RUN"], "did you mean 'translate'?"),
        (["analyis", "RUN"], "did you mean 'analyze'?"),
        (["translate", "RUN", "--bem", "2"], "did you mean '--beam'?"),
        (["plot", "RUN", "--perplexty", "5"], "did you mean '--perplexity'?"),
        (["--quite", "plot", "RUN"], "did you mean '--quiet'?"),
        (["plot", "RUN", "--side", "bth"], "did you mean 'both'?"),
    ],
)
def test_a_mistyped_name_gets_the_closest_valid_one(args, hint):
    assert_clean_error(seqembed(*args), hint)


def test_nothing_close_lists_the_commands():
    result = seqembed("nonsense")
    assert_clean_error(result, "invalid choice: 'nonsense' (choose from demo, train")
    assert "analyse" not in result.stderr  # the hidden spelling is not offered


# ------------------------------------------------------------ help everywhere


def _commands():
    parser = build_parser()
    seen = {}
    for name, command in parser.commands.choices.items():
        seen.setdefault(id(command), (name, command))
    return list(seen.values())


def test_every_flag_has_help_and_every_command_an_example():
    commands = _commands()
    assert len(commands) == 12
    for name, command in commands:
        assert len(command.description) > 100, name
        assert f"example:\n  seqembed {name}" in command.epilog, name
        for action in command._actions:
            if action.help is argparse.SUPPRESS:
                assert action.default is argparse.SUPPRESS, action  # an old name
                continue
            assert action.help and action.help.strip(), (name, action.dest)


@pytest.mark.parametrize("command", ["train", "neighbours", "export", "analyze"])
def test_command_help_shows_a_paragraph_and_an_example(command):
    text = _help(command)
    assert "\nexample:\n  seqembed " + command in text
    paragraph = text.split("\n\n")[1]
    assert len(paragraph) > 100 and not paragraph.startswith(" ")


# ---------------------------------------------------------- overwrite policy


def test_export_refuses_an_existing_file_unless_force(seed_run, tmp_path):
    path = tmp_path / "zh.vec"
    path.write_text("keep me\n")
    refused = seqembed("export", seed_run, "--format", "word2vec", "--out", path)
    assert_clean_error(refused, f"{path}: exists; --force overwrites it")
    assert path.read_text() == "keep me\n"
    forced = seqembed(
        "export", seed_run, "--format", "word2vec", "--out", path, "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert path.read_text(encoding="utf-8").startswith("18 64\n")


def test_export_mistakes_about_the_out_path_are_about_what_was_typed(
    seed_run, tmp_path
):
    folder = tmp_path / "folder"
    folder.mkdir()
    into_folder = seqembed("export", seed_run, "--format", "word2vec", "--out", folder)
    assert_clean_error(into_folder, f"{folder}: is a folder")
    assert ".part" not in into_folder.stderr
    existing = tmp_path / "zh.vec"
    existing.write_text("x\n")
    projector = seqembed("export", seed_run, "--format", "projector", "--out", existing)
    assert_clean_error(projector, f"{existing}: is a file", "folder")
    both = tmp_path / "both.vec"
    two = seqembed("export", seed_run, "--format", "word2vec", "--side", "both",
                   "--out", both)  # fmt: skip
    assert_clean_error(two, f"{both}:", "--out-dir")
    assert not both.exists()
    done = seqembed("export", seed_run, "--format", "word2vec", "--side", "both",
                    "--out-dir", tmp_path / "vectors")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "vectors" / f"{s}.vec")
                                   for s in ("src", "tgt")]  # fmt: skip
    again = seqembed("export", seed_run, "--format", "word2vec", "--side", "both",
                     "--out-dir", tmp_path / "vectors")  # fmt: skip
    assert_clean_error(again, "src.vec: exists; --force overwrites it")


def test_every_named_output_is_refused_when_it_exists(seed_run, tmp_path):
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"mine")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "analysis.json").write_text("{}")
    for args in (
        ["plot", seed_run, "--projection", "pca", "--out", taken],
        ["attention", seed_run, "爱", "--out", taken],
        ["report", seed_run, "--out", taken],
        ["evaluate", seed_run, seed_run / "data" / "train.tsv", "--hyp-out", taken],
        ["analyze", seed_run, "--out-dir", tmp_path / "a"],
    ):
        name = "analysis.json" if args[0] == "analyze" else str(taken)
        assert_clean_error(seqembed(*args), name, "exists; --force overwrites it")
    assert taken.read_bytes() == b"mine"
    forced = seqembed("plot", seed_run, "--projection", "pca", "--out", taken,
                      "--force")  # fmt: skip
    assert forced.returncode == 0 and taken.read_bytes().startswith(b"\x89PNG")


# ------------------------------------------------------------------ progress


def _on_a_terminal(*args) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; (status, what it showed)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "TERM": "xterm-256color", "COLUMNS": "120"}  # fmt: skip
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "seqembed", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    chunks = []

    def read():
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    status = process.wait(timeout=300)
    reader.join(timeout=10)
    os.close(primary)
    return status, b"".join(chunks).decode("utf-8", "replace")


def test_progress_shows_on_a_terminal_only(seed_run, tmp_path):
    plot = ["plot", seed_run, "--projection", "pca", "--force", "--out"]
    status, shown = _on_a_terminal(*plot, tmp_path / "a.png")
    assert status == 0, shown
    assert "drawing the pca map" in shown
    quiet_status, quiet = _on_a_terminal(*plot, tmp_path / "b.png", "--quiet")
    assert quiet_status == 0 and "drawing" not in quiet
    piped = seqembed(*plot, tmp_path / "c.png")
    assert piped.returncode == 0 and "drawing" not in piped.stderr

    analyse = ["analyze", seed_run, "--no-contextual", "--no-alignment",
               "--shaped-repeats", "0", "--out-dir"]  # fmt: skip
    status, shown = _on_a_terminal(*analyse, tmp_path / "x")
    assert status == 0, shown
    assert f"{seed_run}: analysing src" in shown  # the part under way
    quiet_status, quiet = _on_a_terminal(*analyse, tmp_path / "y", "--quiet")
    assert quiet_status == 0 and "analysing" not in quiet

    report = ["report", seed_run, "--projection", "pca", "--samples", "0"]
    status, shown = _on_a_terminal(*report, "--out", tmp_path / "r.html")
    assert status == 0, shown
    assert f"writing the report of {seed_run}" in shown
    piped = seqembed(*report, "--out", tmp_path / "s.html")
    assert piped.returncode == 0 and "writing the report" not in piped.stderr
