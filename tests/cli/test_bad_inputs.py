"""The bad-input catalogue, generated here and run through every command that
reads files: train, translate, evaluate, analyze, neighbours, export, data,
plot, attention and report.

Every case ends in one of two ways (README, "Reliability"):

* a one-line error on stderr naming the file, the line and the problem, exit
  status 2, no traceback;
* it works; where the README says a line is skipped, the skip is counted in
  the log (``skipped 1 line: 1 too long``) and training goes on.

Most cases call ``cli.main`` in this process (the real parser, handlers and
exit codes; log lines land in caplog instead of stderr); a representative few
run as real subprocesses at the end.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from dataclasses import dataclass

import pytest

from seqembed.cli.main import main

# Five raw pairs (jieba segments the Chinese), Tatoeba's layout: en TAB zh.
PAIRS = [
    ("I love natural language processing", "我爱自然语言处理"),
    ("Today the weather is good", "今天天气很好"),
    ("Machine learning is interesting", "机器学习很有趣"),
    ("Deep learning is powerful", "深度学习很强大"),
    ("AI changes the world", "人工智能改变世界"),
]
GOOD_TSV = "".join(f"{en}\t{zh}\n" for en, zh in PAIRS)
BAD_LINE = len(PAIRS) + 1  # the line number of an appended bad line

# A line that is odd but usable, appended to the good ones: (English, Chinese).
ODD_PAIRS = {
    "only punctuation": ("?!...", "？！……"),
    "only emoji": ("😀👍", "😀🎉"),
    "traditional characters": ("I love language", "我愛語言與資訊"),
    "full-width punctuation": ("Hello, ＡＢＣ world!", "你好，ＡＢＣ世界！"),
    "mixed Chinese and Latin": (
        "I use Python 3 on Linux",
        "我在Linux上用Python 3写代码",
    ),
}
LONG = "好" * 100_000  # a 100,000-character line

# Whole-file cases: the file's bytes, from the good text.
ENCODED = {
    "GBK": lambda text: text.encode("gbk"),
    "UTF-16": lambda text: text.encode("utf-16"),
    "UTF-8 BOM": lambda text: b"\xef\xbb\xbf" + text.encode(),
    "CRLF": lambda text: text.replace("\n", "\r\n").encode(),
}
# Errors every text reader gives: the bytes appended to the good text (None:
# made otherwise), the fragments the message must hold; "{line}" is the
# appended line's number.
BAD_TEXT = {
    "missing file": (None, ["file not found"]),
    "directory": (None, ["is a directory"]),
    "invalid UTF-8": (b"Hi\t\xc3\x28 \xff\n", [":{line}:", "invalid UTF-8"]),
    "NUL bytes": (b"Hi\t\xe4\xbd\xa0\x00\xe5\xa5\xbd\n", [":{line}:", "NUL byte"]),
    "GBK": (None, [":1:", "looks like GBK", "iconv -f GB18030"]),
    "UTF-16": (None, [":1:", "looks like UTF-16", "iconv -f UTF-16"]),
}


def expected(case: str, good: str) -> list[str]:
    line = good.count("\n") + 1
    return [f.format(line=line) for f in BAD_TEXT[case][1]]


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    log: str


@pytest.fixture
def cli(capsys, caplog, monkeypatch):
    """Run ``seqembed ARGS`` in this process; ``stdin`` as bytes."""

    def run(*args, stdin: bytes | None = None) -> Outcome:
        capsys.readouterr()
        caplog.clear()
        if stdin is not None:
            stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
            monkeypatch.setattr(sys, "stdin", stream)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:  # argparse's own errors
            code = exit.code
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err, caplog.text)

    return run


def assert_one_line_error(outcome: Outcome, *fragments):
    assert "Traceback" not in outcome.err + outcome.log
    lines = outcome.err.strip().splitlines()
    assert outcome.code == 2, outcome
    assert len(lines) == 1 and lines[0].startswith("seqembed: error: "), outcome.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def assert_works(outcome: Outcome):
    assert outcome.code == 0, outcome.err
    assert "Traceback" not in outcome.err + outcome.log


def write_case(tmp_path, case: str, good: str, name: str):
    """The file for ``case`` built from the good text; its path."""
    path = tmp_path / name
    if case == "missing file":
        return path
    if case == "directory":
        path.mkdir()
        return path
    if case in ENCODED:
        path.write_bytes(ENCODED[case](good))
    else:
        path.write_bytes(good.encode() + BAD_TEXT[case][0])
    return path


TINY = ["--epochs", "1", "--set", "model.emb_size=8", "--set", "model.hidden_size=8",
        "--set", "vocab.min_freq=1", "--set", "train.valid_bleu_max=5"]  # fmt: skip


# ------------------------------------------------------------ train: a TSV


@pytest.mark.parametrize("case", BAD_TEXT)
def test_train_tsv_unreadable(cli, tmp_path, case):
    corpus = write_case(tmp_path, case, GOOD_TSV, "corpus.tsv")
    outcome = cli("train", corpus, "--out", tmp_path / "run", *TINY)
    assert_one_line_error(outcome, str(corpus), *expected(case, GOOD_TSV))


@pytest.mark.parametrize(
    "content, fragments",
    [
        ("", ["corpus.tsv: no usable sentence pairs"]),
        ("\n  \n\t\n", ["no usable sentence pairs", "skipped 3 lines: 3 empty"]),
        (GOOD_TSV + "only one column\n", [f"corpus.tsv:{BAD_LINE}:",
                                          "expected at least 2", "found 1"]),
    ],
    ids=["empty file", "only blank lines", "too few columns"],
)  # fmt: skip
def test_train_tsv_unusable(cli, tmp_path, content, fragments):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(content, encoding="utf-8")
    outcome = cli("train", corpus, "--out", tmp_path / "run", *TINY)
    assert_one_line_error(outcome, *fragments)


def trained_pairs(run) -> str:
    return "".join((run / "data" / f"{n}.tsv").read_text() for n in
                   ("train", "valid", "test"))  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ODD_PAIRS) + ["too many columns"])
def test_train_tsv_odd_lines_are_trained_on(cli, tmp_path, case):
    en, zh = ODD_PAIRS.get(case, ("Four columns", "四列"))
    extra = "\tCC-BY 2.0 (France) Attribution: tatoeba.org\tmore" * (
        case == "too many columns"
    )
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(GOOD_TSV + f"{en}\t{zh}{extra}\n", encoding="utf-8")
    outcome = cli("train", corpus, "--out", tmp_path / "run", *TINY)
    assert_works(outcome)
    assert "skipped" not in outcome.log
    assert zh in trained_pairs(tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["UTF-8 BOM", "CRLF"])
def test_train_tsv_bom_and_crlf_read_as_plain(cli, tmp_path, case):
    corpus = write_case(tmp_path, case, GOOD_TSV, "corpus.tsv")
    assert_works(cli("train", corpus, "--out", tmp_path / "run", *TINY))
    written = trained_pairs(tmp_path / "run")
    assert "\ufeff" not in written and "\r" not in written
    assert written.count("\n") == len(PAIRS)


@pytest.mark.slow
def test_train_skips_a_100000_character_line_and_goes_on(cli, tmp_path):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(GOOD_TSV + f"Long\t{LONG}\n\n", encoding="utf-8")
    outcome = cli("train", corpus, "--out", tmp_path / "run", *TINY)
    assert_works(outcome)
    assert "skipped 2 lines: 1 too long, 1 empty" in outcome.log
    assert (tmp_path / "run" / "last.pt").is_file()


# ---------------------------------------------- train: source + target files


def aligned(tmp_path, src: bytes | None = None, tgt: bytes | None = None):
    (tmp_path / "src.txt").write_bytes(
        src if src is not None else "".join(zh + "\n" for _, zh in PAIRS).encode()
    )
    (tmp_path / "tgt.txt").write_bytes(
        tgt if tgt is not None else "".join(en + "\n" for en, _ in PAIRS).encode()
    )
    return tmp_path / "src.txt", tmp_path / "tgt.txt"


@pytest.mark.parametrize("case", BAD_TEXT)
def test_train_aligned_unreadable(cli, tmp_path, case):
    good_src = "".join(zh + "\n" for _, zh in PAIRS)
    src = write_case(tmp_path, case, good_src, "src.txt")
    fragments = expected(case, good_src)
    tgt_text = "".join(en + "\n" for en, _ in PAIRS) + "one more\n"
    (tmp_path / "tgt.txt").write_text(tgt_text, encoding="utf-8")
    outcome = cli("train", src, tmp_path / "tgt.txt", "--out", tmp_path / "r", *TINY)
    assert_one_line_error(outcome, str(src), *fragments)


def test_train_aligned_different_lengths_reports_both_counts(cli, tmp_path):
    src, tgt = aligned(tmp_path, tgt=b"only\none\n")
    outcome = cli("train", src, tgt, "--out", tmp_path / "r", *TINY)
    assert_one_line_error(outcome, "src.txt", "has 5 lines", "tgt.txt has 2")


def test_train_aligned_empty_and_blank(cli, tmp_path):
    src, tgt = aligned(tmp_path, b"", b"")
    assert_one_line_error(
        cli("train", src, tgt, "--out", tmp_path / "r", *TINY), "no usable"
    )
    src, tgt = aligned(tmp_path, b"\n \n", b"\n\n")
    assert_one_line_error(
        cli("train", src, tgt, "--out", tmp_path / "r", *TINY), "2 empty"
    )


@pytest.mark.slow
def test_train_aligned_odd_lines_work_and_long_ones_are_skipped(cli, tmp_path):
    odd = list(ODD_PAIRS.values()) + [("Long", LONG)]
    src, tgt = aligned(
        tmp_path,
        ("\ufeff" + "".join(zh + "\r\n" for _, zh in PAIRS + odd)).encode(),
        "".join(en + "\n" for en, _ in PAIRS + odd).encode(),
    )
    outcome = cli("train", src, tgt, "--out", tmp_path / "r", *TINY)
    assert_works(outcome)
    assert "skipped 1 line: 1 too long" in outcome.log
    assert "我愛語言與資訊" in trained_pairs(tmp_path / "r")


# ------------------------------------- train: --valid/--test, config, dicts


@pytest.mark.parametrize("case", BAD_TEXT)
def test_train_valid_file_unreadable(cli, tmp_path, case):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(GOOD_TSV, encoding="utf-8")
    valid = write_case(tmp_path, case, GOOD_TSV, "valid.tsv")
    outcome = cli("train", corpus, "--valid", valid, "--test", corpus,
                  "--out", tmp_path / "r", *TINY)  # fmt: skip
    assert_one_line_error(outcome, str(valid), *expected(case, GOOD_TSV))


CONFIG = "# 小模型\nmodel:\n  emb_size: 8\n  hidden_size: 8\n"


@pytest.mark.parametrize(
    "text, fragments",
    [
        (CONFIG + "  colour: red\n", [":5:", "unknown key 'model.colour'"]),
        (CONFIG + "trian:\n  epochs: 1\n", [":5:", "unknown section 'trian'"]),
        (CONFIG + "train:\n  epochs: many\n", [":6:", "train.epochs must be int"]),
        (CONFIG + "  num_layers: 1.5\n", [":5:", "model.num_layers must be int"]),
        (CONFIG + "train:\n  batch_size: -8\n", [":6:", "batch_size must be > 0"]),
        (CONFIG + "vocab:\n  max_size: 0\n", [":6:", "vocab.max_size must be > 0"]),
        (CONFIG + "data:\n  valid_size: -1\n", [":6:", "valid_size must be >= 0"]),
        ("model: [1, 2\n", [":2:", "invalid YAML"]),
        ("- model\n- train\n", ["expected a mapping of sections"]),
    ],
    ids=["unknown key", "unknown section", "wrong type", "float for int",
         "negative size", "zero size", "negative held-out size", "bad YAML",
         "a list"],
)  # fmt: skip
def test_train_config_mistakes_name_file_and_line(cli, tmp_path, text, fragments):
    config = tmp_path / "c.yaml"
    config.write_text(text, encoding="utf-8")
    outcome = cli("train", "corpus.tsv", "--out", tmp_path / "r", "--config", config)
    assert_one_line_error(outcome, str(config), *fragments)


@pytest.mark.parametrize("case", BAD_TEXT)
def test_train_config_unreadable(cli, tmp_path, case):
    config = write_case(tmp_path, case, CONFIG, "c.yaml")
    outcome = cli("train", "corpus.tsv", "--out", tmp_path / "r", "--config", config)
    assert_one_line_error(outcome, str(config), *expected(case, CONFIG))


@pytest.mark.parametrize("case", ["UTF-8 BOM", "CRLF", "empty"])
def test_train_config_bom_crlf_and_empty_are_read(cli, tmp_path, case):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"" if case == "empty" else ENCODED[case](CONFIG))
    # The config is read first: the corpus error after it shows it passed.
    outcome = cli("train", tmp_path / "none.tsv", "--out", tmp_path / "r",
                  "--config", config)  # fmt: skip
    assert_one_line_error(outcome, "none.tsv: file not found")


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ("model.colour=red", "unknown key 'model.colour'"),
        ("modle.emb_size=8", "unknown section 'modle'"),
        ("train.epochs=many", "train.epochs must be int"),
        ("train.batch_size=-1", "train.batch_size must be > 0"),
        ("epochs=3", "--set expects section.key=value"),
    ],
)
def test_set_mistakes(cli, tmp_path, setting, fragment):
    outcome = cli("train", "corpus.tsv", "--out", tmp_path / "r", "--set", setting)
    assert_one_line_error(outcome, fragment)


@pytest.mark.parametrize("case", BAD_TEXT)
def test_train_user_dict_unreadable(cli, tmp_path, case):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(GOOD_TSV, encoding="utf-8")
    good = "自然语言 100\n天气 2000 n\n"
    user_dict = write_case(tmp_path, case, good, "dict.txt")
    outcome = cli("train", corpus, "--user-dict", user_dict,
                  "--out", tmp_path / "r", *TINY)  # fmt: skip
    assert_one_line_error(outcome, str(user_dict), *expected(case, good))


def test_train_user_dict_wrong_columns(cli, tmp_path):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(GOOD_TSV, encoding="utf-8")
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("天气 2000\n自然 often n\n", encoding="utf-8")
    outcome = cli("train", corpus, "--user-dict", user_dict,
                  "--out", tmp_path / "r", *TINY)  # fmt: skip
    assert_one_line_error(outcome, f"{user_dict}:2:", "expected 'word [freq] [tag]'")


# ------------------------------------------------------------ translate


def test_translate_odd_inputs_give_one_line_each(cli, seed_run):
    lines = ["", "   \t ", "完全 未知 的 词 🙃", "学习 " * 2000, "？！……", "😀🎉",
             "我愛語言", "你好，ＡＢＣ！", "我 用 Python 3", LONG[:10_000]]  # fmt: skip
    stdin = "\ufeff" + "\r\n".join(lines) + "\r\n"
    outcome = cli("translate", seed_run, stdin=stdin.encode())
    assert_works(outcome)
    outputs = outcome.out.split("\n")[:-1]
    assert len(outputs) == len(lines)
    assert outputs[:2] == ["", ""]  # empty and blank in, empty out
    assert all(outputs[2:])
    assert "cut to its first 400" in outcome.log


def test_translate_empty_stdin_and_empty_arguments(cli, seed_run):
    assert cli("translate", seed_run, stdin=b"").out == ""
    outcome = cli("translate", seed_run, "", " ")
    assert_works(outcome)
    assert outcome.out == "\n\n"


@pytest.mark.parametrize(
    "data, fragments",
    [
        ("我 爱\n".encode() + b"\xc3\x28\n", ["<stdin>:2:", "invalid UTF-8"]),
        ("今天 天气\n".encode("gbk"), ["<stdin>:1:", "looks like GBK"]),
        ("今天 天气\n".encode("utf-16"), ["<stdin>:1:", "looks like UTF-16"]),
        (b"a\x00b\n", ["<stdin>:1:", "NUL"]),
    ],
    ids=["invalid UTF-8", "GBK", "UTF-16", "NUL bytes"],
)
def test_translate_undecodable_stdin(cli, seed_run, data, fragments):
    assert_one_line_error(cli("translate", seed_run, stdin=data), *fragments)


# ----------------------------------------------------- RUN, for every command


def bad_runs(tmp_path, seed_run):
    """Things given where a run directory or checkpoint belongs."""
    runs = {"missing": tmp_path / "nope"}
    (tmp_path / "no-checkpoint").mkdir()
    runs["folder without a checkpoint"] = tmp_path / "no-checkpoint"
    runs["empty file"] = tmp_path / "empty.pt"
    runs["empty file"].write_bytes(b"")
    runs["a text file"] = tmp_path / "corpus.tsv"
    runs["a text file"].write_text(GOOD_TSV, encoding="utf-8")
    data = (seed_run / "last.pt").read_bytes()
    runs["truncated checkpoint"] = tmp_path / "cut" / "last.pt"
    runs["truncated checkpoint"].parent.mkdir()
    runs["truncated checkpoint"].write_bytes(data[: len(data) // 3])
    return runs


RUN_ERRORS = {
    "missing": ("not found", "no such run directory or checkpoint"),
    "folder without a checkpoint": ("no checkpoint",),
    "empty file": ("truncated or corrupt",),
    "a text file": ("not a checkpoint file",),
    "truncated checkpoint": ("truncated or corrupt",),
}


def run_commands(tmp_path):
    out = tmp_path / "out"
    test = tmp_path / "test.tsv"
    test.write_text(GOOD_TSV, encoding="utf-8")
    return {
        "translate": lambda run: ["translate", run, "我 爱"],
        "evaluate": lambda run: ["evaluate", run, test],
        "analyze": lambda run: ["analyze", run, "--out", out, "--no-alignment"],
        "neighbours": lambda run: ["neighbours", run, "学习"],
        "export": lambda run: ["export", run, "--format", "word2vec", "--out", out],
        "plot": lambda run: ["plot", run, "--method", "pca", "--out", out / "p.png"],
        "attention": lambda run: ["attention", run, "我 爱", "--out", out / "a.png"],
        "report": lambda run: ["report", run, "--out", out / "r.html"],
    }


def test_every_command_refuses_what_is_not_a_run(cli, tmp_path, seed_run):
    runs = bad_runs(tmp_path, seed_run)
    commands = run_commands(tmp_path)
    for command, argv in commands.items():
        for case, run in runs.items():
            outcome = cli(*argv(run))
            try:
                assert_one_line_error(outcome, str(run))
                reasons = RUN_ERRORS[case]
                assert any(r in outcome.err for r in reasons), outcome.err
            except AssertionError as error:
                raise AssertionError(f"{command} / {case}: {error}") from None


# --------------------------------------------- evaluate's test file


@pytest.mark.parametrize("case", BAD_TEXT)
def test_evaluate_test_file_unreadable(cli, tmp_path, seed_run, case):
    test = write_case(tmp_path, case, GOOD_TSV, "test.tsv")
    outcome = cli("evaluate", seed_run, test)
    assert_one_line_error(outcome, str(test), *expected(case, GOOD_TSV))


def test_evaluate_odd_but_readable_test_files(cli, tmp_path, seed_run):
    odd = "".join(f"{en}\t{zh}\n" for en, zh in ODD_PAIRS.values())
    test = tmp_path / "test.tsv"
    test.write_bytes(b"\xef\xbb\xbf" + (odd + f"Long\t{LONG}\n").replace(
        "\n", "\r\n").encode())  # fmt: skip
    outcome = cli("evaluate", seed_run, test, "--json")
    assert_works(outcome)
    assert '"n_sentences": 6' in outcome.out
    one_column = ("one column\n", "test.tsv:1: expected at least 2")
    for content, fragment in [("", "no usable"), ("\n\n", "2 empty"), one_column]:
        test.write_text(content, encoding="utf-8")
        assert_one_line_error(cli("evaluate", seed_run, test), fragment)


# ------------------------------------------ analyze / plot: words and groups


@pytest.mark.parametrize("case", BAD_TEXT)
def test_analyze_word_file_unreadable(cli, tmp_path, seed_run, case):
    words = write_case(tmp_path, case, "学习 很\n", "words.txt")
    outcome = cli("analyze", seed_run, "--word-file", words, "--out", tmp_path)
    assert_one_line_error(outcome, str(words), *expected(case, "学习 很\n"))


@pytest.mark.parametrize("case", BAD_TEXT)
def test_groups_file_unreadable(cli, tmp_path, seed_run, case):
    good = "learning: [学习, 深度]\n"
    groups = write_case(tmp_path, case, good, "groups.yaml")
    for argv in (["analyze", seed_run, "--out", tmp_path],
                 ["plot", seed_run, "--out", tmp_path / "p.png"]):  # fmt: skip
        outcome = cli(*argv, "--groups", groups)
        assert_one_line_error(outcome, str(groups), *expected(case, good))


@pytest.mark.parametrize(
    "content, fragment",
    [("", "no words"), ("\n \n# only a comment\n", "no words")],
    ids=["empty file", "only blank lines"],
)
def test_analyze_empty_word_file(cli, tmp_path, seed_run, content, fragment):
    words = tmp_path / "words.txt"
    words.write_text(content, encoding="utf-8")
    outcome = cli("analyze", seed_run, "--word-file", words, "--out", tmp_path)
    assert_one_line_error(outcome, str(words), fragment)


def test_analyze_reads_a_bom_crlf_word_file(cli, tmp_path, seed_run):
    words = tmp_path / "words.txt"
    words.write_bytes("\ufeff学习 很\r\n深度 强大\r\n😀 ？！\r\n".encode())
    outcome = cli("analyze", seed_run, "--word-file", words, "--out", tmp_path,
                  "--no-alignment", "--no-contextual", "--no-movement",
                  "--shaped-repeats", "0", "--side", "src")  # fmt: skip
    assert_works(outcome)


def test_plot_analysis_file_mistakes(cli, tmp_path, seed_run):
    cases = {"nope.json": None, "gbk.json": b"{}" + "坏".encode("gbk"),
             "list.json": b"[1, 2]", "broken.json": b'{"format": '}  # fmt: skip
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        outcome = cli("plot", seed_run, "--color", "chance", "--analysis", path,
                      "--out", tmp_path / "p.png")  # fmt: skip
        assert_one_line_error(outcome, str(path))


# ----------------------------------------------------------- attention


@pytest.mark.slow
def test_attention_odd_sentences(cli, tmp_path, builtin_run):
    out = tmp_path / "a.png"
    for text in ("", "   "):
        outcome = cli("attention", builtin_run, text, "--out", out)
        assert_one_line_error(outcome, "nothing to translate")
    emoji = cli("attention", builtin_run, "完全未知的词🙃", "--out", out)
    out = [out, "--force"]  # each sentence below replaces the picture
    assert_works(emoji)  # a character no font has: one plain line, no traceback
    assert "no glyph for 🙃 in " in emoji.err + emoji.log
    assert "UserWarning" not in emoji.err + emoji.log
    for text in (
        "？！……",
        "我愛語言",
        "我用Python写代码",
        "好" * 10_000,
    ):
        assert_works(cli("attention", builtin_run, text, "--out", *out))


# ------------------------------------------------------------------ data


def zipped(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, fragments",
    [
        (None, ["cannot download"]),
        (b"", ["not give a valid zip"]),
        (GOOD_TSV.encode(), ["not give a valid zip"]),
        (zipped("cmn.txt", b""), ["cmn.txt", "empty"]),
        (zipped("cmn.txt", GOOD_TSV.encode("gbk")), ["cmn.txt:1:", "UTF-8"]),
        (zipped("cmn.txt", GOOD_TSV.encode("utf-16")), ["cmn.txt:1:", "UTF-8"]),
        (zipped("cmn.txt", b"one column\n"), ["cmn.txt:1:", "columns"]),
        (zipped("other.bin", b"x"), ["no single cmn.txt"]),
    ],
    ids=["missing", "empty", "a text file", "empty member", "GBK member",
         "UTF-16 member", "one column", "no text member"],
)  # fmt: skip
def test_data_refuses_bad_downloads(cli, tmp_path, content, fragments):
    source = tmp_path / "cmn-eng.zip"
    if content is not None:
        source.write_bytes(content)
    outcome = cli("data", "tatoeba", "--url", source.as_uri(),
                  "--cache-dir", tmp_path / "cache")  # fmt: skip
    assert_one_line_error(outcome, *fragments)
    assert not list((tmp_path / "cache").rglob("*.tsv"))


def test_data_cache_dir_that_is_a_file(cli, tmp_path):
    (tmp_path / "file").write_text("x")
    outcome = cli("data", "tatoeba", "--url", (tmp_path / "z.zip").as_uri(),
                  "--cache-dir", tmp_path / "file")  # fmt: skip
    assert_one_line_error(outcome, "cache directory")


# ---------------------------------------------- the real CLI, a few cases


@pytest.mark.slow
def test_representative_cases_as_real_subprocesses(tmp_path, seed_run):
    from helpers import assert_clean_error, seqembed

    gbk = tmp_path / "gbk.tsv"
    gbk.write_bytes(GOOD_TSV.encode("gbk"))
    assert_clean_error(seqembed("train", gbk, "--out", tmp_path / "r"),
                       f"{gbk}:1:", "looks like GBK", "iconv")  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochs: 3\n  batch_size: -1\n")
    configured = seqembed("train", gbk, "--out", tmp_path / "r", "--config", config)
    assert_clean_error(configured, f"{config}:3:", "batch_size must be > 0")
    piped = subprocess.run(
        [sys.executable, "-m", "seqembed", "translate", str(seed_run)],
        input="我 爱\n".encode() + b"\xff\n", capture_output=True, timeout=300,
    )  # fmt: skip
    assert piped.returncode == 2, piped.stderr
    assert piped.stderr.decode().splitlines() == [
        "seqembed: error: <stdin>:2: not UTF-8 text: invalid UTF-8 at byte 1"
    ]
    cut = tmp_path / "cut.pt"
    cut.write_bytes((seed_run / "last.pt").read_bytes()[:5000])
    assert_clean_error(seqembed("neighbours", cut, "学习"), "truncated or corrupt")
    assert_clean_error(seqembed("report", tmp_path), "no checkpoint")
