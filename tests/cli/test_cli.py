"""The command line end to end, in subprocesses, as a user runs it."""

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import assert_clean_error, seqembed

from seqembed.cli.demo import SEED_PAIRS


@pytest.fixture(scope="module")
def seed_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "seed"
    result = seqembed("demo", "--seed-example", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.slow
def test_seed_example_demo_prints_losses_and_exact_translations(seed_demo):
    out, result = seed_demo
    assert result.stderr.count("train loss") == 50
    for zh, en in SEED_PAIRS:
        assert f"{zh}  ->  {en}" in result.stderr
    assert "5/5 translated exactly" in result.stderr
    assert (out / "last.pt").is_file() and (out / "config.yaml").is_file()
    # The design's final model, named, and the one the analysis describes
    assert f"Model: {out / 'last.pt'} (the final model" in result.stderr
    assert "What the embeddings of last.pt learned" in result.stderr
    analysis = json.loads((out / "analysis" / "analysis.json").read_text("utf-8"))
    assert analysis["checkpoint"] == "last.pt"


@pytest.mark.slow
def test_translate_prints_one_line_per_input_line(seed_demo):
    out, _ = seed_demo
    lines = [zh for zh, _ in SEED_PAIRS] + [
        "",
        "   ",
        "完全 未知 的 词",
        "学习 " * 3000,
    ]
    result = seqembed("translate", out, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.split("\n")[:-1]
    assert len(outputs) == len(lines)
    assert outputs[:5] == [en for _, en in SEED_PAIRS]
    assert outputs[5:7] == ["", ""]  # empty and blank input: empty output
    assert outputs[7] and outputs[8]  # unknown words, 9,000 characters: a result
    beam = seqembed("translate", out / "last.pt", "--beam", 4, "今天 天气 很 好")
    assert beam.stdout == "Today weather is good\n"


@pytest.mark.slow
def test_train_translate_evaluate_on_a_small_tsv(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    rows = [f"{en}\t{zh.replace(' ', '')}\tattribution" for zh, en in SEED_PAIRS * 2]
    corpus.write_text(
        "\n".join(rows + ["", "Too many words\t" + "好" * 2000]) + "\n",
        encoding="utf-8",
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        "model:\n  emb_size: 32\n  hidden_size: 32\ntrain:\n  epochs: 3\n"
    )
    run = tmp_path / "run"
    result = seqembed(
        "train",
        corpus,
        "--out",
        run,
        "--config",
        config,
        "--set",
        "model.attention=bahdanau",
        "--set",
        "vocab.min_freq=1",
        "--max-minutes",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    assert "skipped 2 lines: 1 empty, 1 too long" in result.stderr
    assert "removed 5 duplicate pairs" in result.stderr
    assert (run / "data" / "train.tsv").is_file() and (run / "best.pt").is_file()
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]

    again = seqembed("train", "--out", run, "--resume", "--set", "train.epochs=4")
    assert again.returncode == 0, again.stderr
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4

    scored = seqembed("evaluate", run, run / "data" / "train.tsv", "--json")
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["bleu_signature"].startswith("nrefs:1|case:lc|")
    assert 0 <= report["bleu"] <= 100 and report["n_sentences"] == 5
    assert (run / "data" / "train.hyp").read_text().count("\n") == 5


@pytest.mark.slow
def test_aligned_files_and_their_length_mismatch(tmp_path):
    (tmp_path / "src.txt").write_text("我 爱\n今天\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("I love\n", encoding="utf-8")
    result = seqembed(
        "train", tmp_path / "src.txt", tmp_path / "tgt.txt", "--out", tmp_path / "r"
    )
    assert_clean_error(result, "src.txt", "has 2 lines", "has 1")


@pytest.mark.slow
@pytest.mark.parametrize(
    "content, fragments",
    [
        (b"", ["corpus.tsv", "empty"]),
        (
            b"Hi\t\xe4\xbd\xa0\xe5\xa5\xbd\nno columns here\n",
            ["corpus.tsv:2:", "columns"],
        ),
        (b"Hi\t\xe4\xbd\xa0\xe5\xa5\xbd\nHo\t\xc3\x28\n", ["corpus.tsv:2:", "UTF-8"]),
    ],
)
def test_bad_corpus_gives_one_line_error(tmp_path, content, fragments):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_bytes(content)
    assert_clean_error(seqembed("train", corpus, "--out", tmp_path / "r"), *fragments)


@pytest.mark.slow
def test_missing_files_and_bad_settings(tmp_path):
    assert_clean_error(
        seqembed("train", tmp_path / "nope.tsv", "--out", tmp_path / "r"),
        "nope.tsv",
        "not found",
    )
    assert_clean_error(seqembed("translate", tmp_path / "nope", "hi"), "not found")
    assert_clean_error(
        seqembed(
            "train", tmp_path / "x", "--out", tmp_path / "r", "--set", "model.size=3"
        ),
        "unknown key 'model.size'",
    )
    (tmp_path / "fake.pt").write_bytes(b"not a checkpoint")
    assert_clean_error(seqembed("translate", tmp_path / "fake.pt", "hi"), "fake.pt")


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    result = seqembed(
        "--debug", "train", tmp_path / "nope.tsv", "--out", tmp_path / "r"
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.slow
def test_builtin_demo_trains_translates_and_scores(tmp_path):
    out = tmp_path / "demo"
    result = seqembed("demo", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("train loss") == 40
    assert "我爱自然语言处理  ->  i love natural language processing" in result.stderr
    assert "Held-out test (30 pairs never seen in training): BLEU" in result.stderr
    # best.pt, every command's default, named where the results are shown;
    # the test scores with their 95% interval, as `seqembed evaluate` shows them
    assert f"Model: {out / 'best.pt'} (the best validation epoch" in result.stderr
    held_out = next(line for line in result.stderr.splitlines() if "Held-out" in line)
    assert re.search(r"BLEU [\d.]+ ± [\d.]+ \(95% CI\), chrF [\d.]+ ± [\d.]+ "
                     r"\(95% CI\), of best.pt", held_out), held_out  # fmt: skip
    assert "What the embeddings of best.pt learned" in result.stderr
    analysis = json.loads((out / "analysis" / "analysis.json").read_text("utf-8"))
    assert analysis["checkpoint"] == "best.pt"
    for name in ("last.pt", "best.pt", "config.yaml", "metrics.jsonl", "vocab.src.tsv"):
        assert (out / name).is_file()


@pytest.mark.slow
def test_demo_replaces_an_earlier_demo_but_no_other_run(seed_demo, tmp_path):
    out, _ = seed_demo
    again = seqembed("demo", "--seed-example", "--out", out)
    assert again.returncode == 0, again.stderr
    (out / ".seqembed-demo").unlink()
    assert_clean_error(seqembed("demo", "--seed-example", "--out", out), "not a demo")
    assert (out / "last.pt").is_file()


@pytest.mark.slow
def test_given_valid_and_test_files_replace_the_split(tmp_path):
    rows = [f"{en}\t{zh}" for zh, en in SEED_PAIRS]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "valid.tsv").write_text(rows[0] + "\n", encoding="utf-8")
    (tmp_path / "test.tsv").write_text("\n".join(rows[1:3]) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    small = ["--set", "model.emb_size=16", "--set", "model.hidden_size=16"]
    common = ["--pretokenized", "--set", "vocab.min_freq=1", "--epochs", "1", *small]
    given = ["--valid", tmp_path / "valid.tsv", "--test", tmp_path / "test.tsv"]
    result = seqembed("train", tmp_path / "train.tsv", "--out", run, *given, *common)
    assert result.returncode == 0, result.stderr
    written = {n: (run / "data" / f"{n}.tsv").read_text().count("\n") for n in
               ("train", "valid", "test")}  # fmt: skip
    assert written == {"train": 5, "valid": 1, "test": 2}
    lonely = seqembed("train", tmp_path / "train.tsv", "--out", tmp_path / "r2",
                      "--valid", tmp_path / "valid.tsv")  # fmt: skip
    assert_clean_error(lonely, "valid and test go together")


def test_usage_mistakes_are_one_line():
    assert_clean_error(seqembed("translate"), "seqembed translate: error:", "--help")
    bogus = seqembed("train", "x.tsv", "--out", "r", "--bogus")
    assert_clean_error(bogus, "unrecognized arguments")
    assert_clean_error(seqembed("nonsense"), "invalid choice")


@pytest.mark.slow
def test_ctrl_c_saves_the_batch_and_resume_goes_on(tmp_path):
    import signal
    import time

    import torch

    from seqembed.cli.demo import resource_path

    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    corpus = str(resource_path("builtin.tsv"))
    small = ["--set", "model.hidden_size=32", "--set", "model.emb_size=16"]
    command = [sys.executable, "-m", "seqembed", "train", corpus, "--out", str(run),
               "--epochs", "200", "--set", "train.batch_size=4", *small]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # somewhere inside epoch 2
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=120)[1]
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume continues" in stderr
    counters = torch.load(run / "last.pt", weights_only=True)["counters"]
    assert counters["epoch"] >= 2 and counters["step"] > 0

    resumed = seqembed(
        "train", "--out", run, "--resume", "--epochs", str(counters["epoch"])
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at epoch {counters['epoch']}, batch {counters['position']}" in (
        resumed.stderr
    )
