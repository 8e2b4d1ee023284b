import pytest

from seqembed.cli.demo import builtin_pairs
from seqembed.data.corpus import (
    Pair,
    SkipCounts,
    deduplicate,
    read_aligned,
    read_tsv,
    split_pairs,
)
from seqembed.data.segment import normalize
from seqembed.errors import InputError


def read(path, **kw):
    return read_tsv(
        path,
        kw.get("src", 1),
        kw.get("tgt", 0),
        kw.get("max_chars", 1000),
        kw.get("skips", SkipCounts()),
    )


def test_tatoeba_layout_extra_columns_bom_and_crlf(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes("\ufeffHi.\t嗨。\tCC-BY #1\r\nRun!\t你跑！\tx\textra\r\n".encode())
    pairs = read(path)
    assert [(p.src, p.tgt) for p in pairs] == [("嗨。", "Hi."), ("你跑！", "Run!")]


def test_other_column_order(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("我们\twe\n", encoding="utf-8")
    assert read(path, src=0, tgt=1)[0] == Pair("我们", "we", 1)


def test_blank_and_overlong_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\t甲\n\n  \nb\t乙\n" + "c" * 50 + "\t丙\n", encoding="utf-8")
    skips = SkipCounts()
    pairs = read(path, max_chars=20, skips=skips)
    assert len(pairs) == 2
    assert skips.summary() == "skipped 3 lines: 2 empty, 1 too long"


@pytest.mark.parametrize(
    "content, message, line",
    [
        (b"", "the corpus is empty", None),
        (b"\n\n", "the corpus is empty", None),
        (b"a\t\xe7\x94\xb2\nonly-one-column\n", "expected at least 2 tab-separated", 2),
        (b"a\t\xe7\x94\xb2\nb\t\xff\xfe\n", "invalid UTF-8", 2),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, message, line):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read(path)
    text = str(info.value)
    assert message in text
    assert text.startswith(f"{path}:{line}:" if line else f"{path}:")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read(tmp_path / "nope.tsv")
    with pytest.raises(InputError, match="is a directory"):
        read(tmp_path)


def test_aligned_files_must_have_equal_length(tmp_path):
    (tmp_path / "s").write_text("甲\n乙\n", encoding="utf-8")
    (tmp_path / "t").write_text("a\n", encoding="utf-8")
    with pytest.raises(InputError, match="has 2 lines but .* has 1"):
        read_aligned(tmp_path / "s", tmp_path / "t", 100, SkipCounts())
    (tmp_path / "t").write_text("a\nb\n", encoding="utf-8")
    pairs = read_aligned(tmp_path / "s", tmp_path / "t", 100, SkipCounts())
    assert [(p.src, p.tgt) for p in pairs] == [("甲", "a"), ("乙", "b")]


def assert_leak_free(splits):
    seen_src = {normalize(p.src).lower() for p in splits["train"]}
    seen_tgt = {normalize(p.tgt).lower() for p in splits["train"]}
    for name in ("valid", "test"):
        for pair in splits[name]:
            assert normalize(pair.src).lower() not in seen_src
            assert normalize(pair.tgt).lower() not in seen_tgt


def test_split_groups_pairs_that_share_a_sentence():
    pairs = [
        Pair("甲", "a", 1),
        Pair("乙", "a", 2),
        Pair("乙", "b", 3),
        Pair("丙", "c", 4),
        Pair("丁", "d", 5),
        Pair("戊", "e", 6),
    ]
    for seed in range(20):
        splits = split_pairs(pairs, valid_size=1, test_size=1, seed=seed)
        assert_leak_free(splits)
        assert sum(len(v) for v in splits.values()) == len(pairs)


def test_split_is_deterministic_and_leak_free_on_builtin():
    pairs = deduplicate(builtin_pairs())
    first = split_pairs(pairs, 30, 30, seed=1)
    assert first == split_pairs(pairs, 30, 30, seed=1)
    assert first != split_pairs(pairs, 30, 30, seed=2)
    assert len(first["test"]) == len(first["valid"]) == 30
    assert_leak_free(first)


def test_split_is_leak_free_on_tatoeba(tatoeba_tsv):
    pairs = deduplicate(read(tatoeba_tsv))
    splits = split_pairs(pairs, 1000, 1000, seed=1)
    assert len(splits["test"]) == len(splits["valid"]) == 1000
    assert_leak_free(splits)
    # The export repeats English sentences with other translations: grouping
    # must have moved some of them together.
    english = [normalize(p.tgt).lower() for p in pairs]
    assert len(set(english)) < len(english)


def test_deduplicate_keeps_first():
    pairs = [Pair("甲", "a", 1), Pair("甲 ", "a", 2), Pair("甲", "b", 3)]
    assert [p.line for p in deduplicate(pairs)] == [1, 3]
