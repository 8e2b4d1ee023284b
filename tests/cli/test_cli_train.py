"""``seqembed train`` is a layer over ``seqembed.train``: for the same bad
input both say the same line (the CLI in a subprocess, as a user runs it)."""

import pytest
from helpers import assert_clean_error, seqembed

import seqembed as api
from seqembed.cli.demo import SEED_PAIRS

SMALL = {"model.emb_size": 16, "model.hidden_size": 16, "vocab.min_freq": 1}


def cli_error(*args) -> str:
    """The one line ``seqembed`` prints for a mistake, less its prefix."""
    result = seqembed(*args)
    assert_clean_error(result, "seqembed: error: ")
    return result.stderr.strip().removeprefix("seqembed: error: ")


def api_error(*args, **kwargs) -> str:
    with pytest.raises(api.InputError) as raised:
        api.train(*args, **kwargs)
    return str(raised.value)


@pytest.fixture
def corpus(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS), "utf-8")
    return tsv


def test_a_misspelled_setting_gets_the_same_did_you_mean(corpus, tmp_path):
    out = tmp_path / "run"
    line = cli_error("train", corpus, "--out", out, "--set", "train.lr_shedule=0.1")
    assert line == (
        "--set train.lr_shedule=0.1: unknown key 'train.lr_shedule'; "
        "did you mean 'train.lr_schedule'?"
    )
    assert api_error(corpus, out, overrides=["train.lr_shedule=0.1"]) == line
    keyword = api_error(corpus, out, **{"train.lr_shedule": 0.1})
    assert keyword == line.removeprefix("--set train.lr_shedule=0.1: ")
    section = api_error(corpus, out, **{"trian.epochs": 2})
    assert section.startswith("unknown section 'trian'; did you mean 'train'?")
    assert not out.exists()


def test_a_bad_corpus_and_a_used_folder_get_the_same_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("Hi\t你好\nno columns here\n", encoding="utf-8")
    line = cli_error("train", bad, "--out", tmp_path / "r")
    assert line.startswith(f"{bad}:2: ") and "columns" in line
    assert api_error(bad, tmp_path / "r") == line
    used = tmp_path / "used"
    used.mkdir()
    (used / "last.pt").write_bytes(b"")
    line = cli_error("train", bad, "--out", used)
    assert line.startswith(f"{used}: already holds a run")
    assert api_error(bad, used) == line
    lonely = cli_error("train", bad, "--out", tmp_path / "r", "--valid", bad)
    assert api_error(bad, tmp_path / "r", valid=bad) == lonely
    assert "valid and test go together" in lonely


@pytest.mark.slow
def test_resume_refuses_the_same_changes_in_the_same_words(corpus, tmp_path):
    run = tmp_path / "run"
    small = [a for key, value in SMALL.items() for a in ("--set", f"{key}={value}")]
    trained = seqembed("train", corpus, "--out", run, "--pretokenized",
                       "--epochs", "1", *small)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr.count("train loss") == 1  # once: not the log as well
    # A key the rule of nmt.resume keeps: refused, in one line, by both
    line = cli_error("train", "--out", run, "--resume", "--set", "model.emb_size=32")
    assert "a resumed run keeps its settings: model.emb_size is 32" in line
    assert api_error(None, run, resume=True, **{"model.emb_size": 32}) == line
    assert api_error(None, run, resume=True, overrides=["model.emb_size=32"]) == line
    vectors = tmp_path / "v.txt"
    vectors.write_text("1 16\n", encoding="utf-8")
    line = cli_error("train", "--out", run, "--resume", "--src-embeddings", vectors)
    assert "start a run" in line
    assert api_error(None, run, resume=True, src_embeddings=vectors) == line
    # Resuming keeps the run's own settings: its sizes, its pretokenized source
    resumed = api.train(None, run, resume=True, epochs=2)
    assert resumed.training.epochs_done == 2
    assert resumed.config.model.emb_size == 16
    assert resumed.config.data.src_segmentation == "pretokenized"
