"""Property-based tests (hypothesis): whatever text or bytes come in, each
reader works or raises the clean InputError, never anything else."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seqembed.analysis.run import read_groups
from seqembed.config import load_config
from seqembed.data.corpus import SkipCounts, read_aligned, read_tsv
from seqembed.data.segment import ChineseSegmenter, EnglishTokenizer, normalize
from seqembed.data.vocab import SPECIALS, UNK, Vocab
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import FORMAT, VERSION, load_checkpoint
from seqembed.textfile import read_text
from seqembed.vectors.table import read_word_list

# Modest: the whole file runs in seconds. Function-scoped fixtures (tmp_path)
# are shared by the examples of one test, which is what we want here.
FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Any text, weighted towards what a Chinese-English corpus holds, with the
# special tokens' spellings mixed in.
TEXT = st.lists(
    st.one_of(
        st.characters(),  # all of Unicode but surrogates
        st.sampled_from("我爱自然语言处理今天天气很好，。！？「」ＡＢＣ１２３ \t😀"),
        st.sampled_from(SPECIALS),
    ),
    max_size=30,
).map("".join)


@pytest.fixture(scope="module")
def jieba():
    return ChineseSegmenter("jieba")


# ---------------------------------------------------------------- segmentation


@FAST
@given(text=TEXT)
@example(text="今天天气很好")
@example(text="\u3000\u2028\x1c<EOS>")
def test_segmentation_keeps_every_character_and_makes_no_blank_token(jieba, text):
    expected = "".join(normalize(text).split())
    for segmenter in (
        jieba,
        ChineseSegmenter("char"),
        ChineseSegmenter("pretokenized"),
    ):
        tokens = segmenter(text)
        assert all(token.strip() for token in tokens)
        assert "".join(tokens).replace(" ", "") == expected


@FAST
@given(text=TEXT)
@example(text='He said "hi" to Tom\'s dog.')
@example(text="&amp; [x] 100% U.S.A.")
def test_english_tokenisation_round_trips(text):
    tokenizer = EnglishTokenizer("moses", lowercase=False)
    tokens = tokenizer.tokenize(text)
    assert all(token and not any(c.isspace() for c in token) for token in tokens)
    # Detokenising only places spaces: every character of the tokens is kept,
    # and tokenising the sentence again gives the same tokens back.
    sentence = tokenizer.detokenize(tokens)
    assert "".join(sentence.split()) == "".join(tokens)
    assert tokenizer.tokenize(sentence) == tokens


# ------------------------------------------------------------------ vocabulary


@FAST
@given(
    sentences=st.lists(st.lists(TEXT.filter(bool), max_size=8), max_size=8),
    probe=st.lists(TEXT, max_size=8),
)
def test_vocabulary_round_trips(tmp_path, sentences, probe):
    vocab = Vocab.build(sentences, min_freq=1)
    assert tuple(vocab.tokens[:4]) == SPECIALS
    assert len(set(vocab.tokens)) == len(vocab)
    # Every word seen in training decodes back to itself ...
    words = [w for sentence in sentences for w in sentence if w not in SPECIALS]
    assert vocab.decode(vocab.encode(words)) == words
    # ... anything else, a literal "<EOS>" in the text too, is <UNK>.
    ids = vocab.encode(probe)
    assert all(i >= len(SPECIALS) or i == UNK for i in ids)
    # Through a real checkpoint file (torch.save, weights_only load).
    path = tmp_path / "vocab.pt"
    torch.save({"format": FORMAT, "version": VERSION, "v": vocab.to_dict()}, path)
    again = Vocab.from_dict(torch.load(path, weights_only=True)["v"])
    assert again.tokens == vocab.tokens and again.freqs == vocab.freqs


# ---------------------------------------------------- readers over random bytes


def some_bytes():
    """Random bytes, and random mixes of the pieces bad files are made of."""
    pieces = st.sampled_from(
        [b"\t", b"\n", b"\r\n", b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\xc3",
         "我爱你".encode(), "我爱你".encode("gbk"), "天气".encode("utf-16-le"),
         b"Hello", b" ", b"#", b":", b"- ", b"{", b"[", b"model:", b"train:\n  lr: "]
    )  # fmt: skip
    return st.one_of(
        st.binary(max_size=200),
        st.lists(pieces, max_size=30).map(b"".join),
    )


def works_or_input_error(read, *args):
    try:
        return read(*args)
    except InputError as error:
        assert "\n" not in str(error)
        return None


@FAST
@given(data=some_bytes(), other=some_bytes())
@example(data=b"\xff\xfeH\x00i\x00", other=b"")
def test_corpus_readers_over_random_bytes(tmp_path, data, other):
    src, tgt = tmp_path / "a.tsv", tmp_path / "b.txt"
    src.write_bytes(data)
    tgt.write_bytes(other)
    pairs = works_or_input_error(read_tsv, src, 1, 0, 1000, SkipCounts())
    for pair in pairs or []:
        assert pair.src.strip() and pair.tgt.strip() and "\t" not in pair.src
    works_or_input_error(read_aligned, src, tgt, 1000, SkipCounts())


@FAST
@given(data=some_bytes())
def test_text_readers_over_random_bytes(tmp_path, data):
    path = tmp_path / "file"
    path.write_bytes(data)
    for read in (read_text, read_word_list, read_groups, load_config):
        works_or_input_error(read, path)


def a_checkpoint() -> bytes:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "w": torch.arange(64.0)}, buffer)
    return buffer.getvalue()


CHECKPOINT = a_checkpoint()


@FAST
@given(
    damage=st.one_of(
        st.integers(0, len(CHECKPOINT)).map(lambda n: CHECKPOINT[:n]),
        st.tuples(
            st.integers(0, len(CHECKPOINT) - 1), st.binary(min_size=1, max_size=8)
        ).map(
            lambda t: CHECKPOINT[: t[0]] + t[1] + CHECKPOINT[t[0] + len(t[1]) :]
        ),  # fmt: skip
        st.binary(max_size=300).map(lambda b: b"\x80\x02" + b),
        st.binary(max_size=300),
    )
)
def test_damaged_checkpoints_load_or_are_refused(tmp_path, damage):
    path = tmp_path / "last.pt"
    path.write_bytes(damage)
    state = works_or_input_error(load_checkpoint, path)
    if state is not None:  # only the bytes of the real thing load
        assert zipfile.is_zipfile(io.BytesIO(damage))


# ------------------------------------------------------------------- translate


@pytest.fixture(scope="module")
def translator(seed_run):
    from seqembed.nmt.evaluation import Translator

    return Translator.from_checkpoint(seed_run)


@FAST
@given(texts=st.lists(TEXT, min_size=1, max_size=4))
def test_translate_gives_one_line_for_any_text(translator, texts):
    outputs = translator.translate(texts)
    assert len(outputs) == len(texts)
    for text, output in zip(texts, outputs):
        assert isinstance(output, str) and "\n" not in output
        if not normalize(text):
            assert output == ""


@pytest.mark.slow
def test_the_cli_translates_random_lines(seed_run):
    """Random lines through stdin of the real command: one line out for each."""
    import random
    import subprocess
    import sys

    rng = random.Random(5)

    def char():
        while True:
            c = chr(rng.choice([rng.randrange(0x20, 0x3000), rng.randrange(0x4E00,
                    0x9FFF), rng.randrange(0x1F300, 0x1FAFF)]))  # fmt: skip
            if not c.isspace():
                return c

    sample = ["".join(char() for _ in range(rng.randrange(0, 30))) for _ in range(40)]
    sample += ["学习 " * 3000, "<EOS> <PAD>", "", " "]
    result = subprocess.run(
        [sys.executable, "-m", "seqembed", "translate", str(Path(seed_run))],
        input="\n".join(sample).encode() + b"\n", capture_output=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().count("\n") == len(sample)
