"""The config fuzz test (issue 27): every key of the config, at its boundary
values (0, 1, -1, a huge number, an empty string, a value of the wrong type,
each allowed choice), through ``seqembed train`` on a small corpus.

Each ends in one of two ways, never a traceback:

* a one-line error on stderr naming the key (exit status 2);
* a run that completes and says what it did (``stopped: ...``, exit 0).

The values the config refuses all run here, through the CLI in this process
(they end before any data is read). Of the values it accepts, each key's
first one trains here too, on 40 pairs of the built-in corpus for a few
steps; the exhaustive version, every accepted value, is marked slow. A
sample runs as real subprocesses at the end.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import pytest
import torch
from helpers import seqembed

from seqembed.cli.demo import resource_path
from seqembed.cli.main import main
from seqembed.config import fields
from seqembed.configfile import field_range, field_spelling, parse_override
from seqembed.errors import InputError

# A tiny model on a few pairs: about 3 steps, 4 validation sentences. "char"
# segmentation: jieba's dictionary takes seconds to load for every run.
SMALL = {
    "data.src_segmentation": "char",
    "data.valid_size": "4",
    "data.test_size": "4",
    "vocab.min_freq": "1",
    "model.emb_size": "8",
    "model.hidden_size": "8",
    "train.epochs": "1",
    "train.batch_size": "16",
    "train.valid_bleu_max": "4",
    "train.max_minutes": "1",  # a huge train.epochs still ends
}
HUGE = "1000000000000"

# Keys whose mistakes surface as the problem they cause, named otherwise:
# a column the corpus lacks names the file's columns; a missing file, its path.
NAMED_BY = {
    "data.src_column": "columns",
    "data.tgt_column": "columns",
}
PATH_KEYS = {"data.user_dict", "model.src_embeddings", "model.tgt_embeddings"}


def boundary_values(key: str) -> list[str]:
    """The ``--set`` values tried for ``key``, as a user would type them."""
    spec = fields()[key]
    hint = typing.get_type_hints(_section_class(key))[spec.name]
    options = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return [*map(str, options), "", "nonsense"]
    if field_spelling(spec):  # a device: valid spellings, here or not
        return ["auto", "cpu", "cuda", "cuda:0", "cuda:99", "mps", "", "gpu"]
    if hint is bool:
        return ["true", "false", "", "2"]
    if options == [str] or hint is str:
        return ["", "null", "1", "no/such/file.txt"]
    values = ["0", "1", "-1", HUGE, "", "abc", "[1, 2]"]
    if float in options or hint is float:
        values += ["0.5", "1e-3", ".nan", ".inf"]
    if type(None) in typing.get_args(hint):
        values.append("null")
    bounds = field_range(spec)
    for bound in (bounds.ge, bounds.gt, bounds.le, bounds.lt):
        if bound is not None and str(bound) not in values:
            values.append(str(bound))
    return values


def _section_class(key: str):
    from seqembed.config import sections

    return sections()[key.split(".")[0]]


def accepted(key: str, value: str) -> bool:
    """Whether the config takes the value (with the small settings)."""
    from seqembed.config import load_config

    try:
        load_config(None, _settings(key, value))
    except InputError:
        return False
    return True


def _settings(key: str, value: str) -> list[str]:
    base = [f"{k}={v}" for k, v in SMALL.items() if k != key]
    return [*base, f"{key}={value}"]


CASES = [(key, value) for key in fields() for value in boundary_values(key)]
REFUSED = [case for case in CASES if not accepted(*case)]
ACCEPTED = [case for case in CASES if accepted(*case)]
# Each key's first accepted value of the list above: 0, 1, ... before the
# declared bounds (a bound such as model.hidden_size=65536 trains only in the
# slow version, where it is refused for want of memory).
FIRST_ACCEPTED = list({key: (key, v) for key, v in reversed(ACCEPTED)}.values())


@dataclass
class Outcome:
    code: int
    err: str


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The built-in corpus's first 40 pairs (English TAB Chinese TAB topic)."""
    path = tmp_path_factory.mktemp("fuzz") / "small.tsv"
    lines = resource_path("builtin.tsv").read_text(encoding="utf-8").splitlines()
    path.write_text("".join(line + "\n" for line in lines[:40]), encoding="utf-8")
    return path


@pytest.fixture
def train_with(corpus, tmp_path, capsys, caplog):
    """``seqembed train`` in this process with one key set; torch's thread
    count put back, as train.threads changes it for the whole process."""

    def run(key: str, value: str) -> Outcome:
        threads = torch.get_num_threads()
        sets = [arg for s in _settings(key, value) for arg in ("--set", s)]
        capsys.readouterr()
        try:
            code = main(["train", str(corpus), "--out", str(tmp_path / "run"), *sets])
        finally:
            torch.set_num_threads(threads)
        return Outcome(code, capsys.readouterr().err)

    return run


def assert_one_line_or_a_run(outcome: Outcome, key: str, value: str) -> None:
    assert "Traceback" not in outcome.err, outcome.err
    lines = outcome.err.strip().splitlines()
    if outcome.code == 2:
        assert len(lines) == 1 and lines[0].startswith("seqembed: error: "), lines
        names = [key, NAMED_BY.get(key, key)]
        if key in PATH_KEYS:
            names.append(parse_override(f"{key}={value}")[2])
        assert any(str(name) in lines[0] for name in names), (key, value, lines[0])
    else:
        assert outcome.code == 0, outcome.err
        assert lines and lines[-1].startswith("stopped: "), outcome.err


def test_the_cases_cover_every_key_both_ways():
    assert {key for key, _ in CASES} == set(fields())
    assert {key for key, _ in FIRST_ACCEPTED} == set(fields())  # defaults pass
    assert len(REFUSED) > 3 * len(fields())


@pytest.mark.parametrize("key, value", REFUSED)
def test_a_refused_value_is_one_line_naming_the_key(train_with, key, value):
    outcome = train_with(key, value)
    assert outcome.code == 2
    assert_one_line_or_a_run(outcome, key, value)


@pytest.mark.parametrize("key, value", FIRST_ACCEPTED)
def test_an_accepted_value_trains_or_is_one_line(train_with, key, value):
    assert_one_line_or_a_run(train_with(key, value), key, value)


@pytest.mark.slow
@pytest.mark.parametrize("key, value", ACCEPTED)
def test_every_accepted_value_trains_or_is_one_line(train_with, key, value):
    assert_one_line_or_a_run(train_with(key, value), key, value)


@pytest.mark.parametrize(
    "settings, fragment",
    [
        (["data.max_tokens=1"], "no training pairs left: all 32 are longer than "
         "data.max_tokens=1"),
        (["data.tokenize_processes=0", "data.cache_min_pairs=1"],
         "data.tokenize_processes must be >= 1"),
    ],
    ids=["nothing left to train on", "Pool(0)"],
)  # fmt: skip
def test_issue_27_cases_as_real_subprocesses(corpus, tmp_path, settings, fragment):
    sets = [arg for s in settings for arg in ("--set", s)]
    small = [arg for k, v in SMALL.items() for arg in ("--set", f"{k}={v}")]
    result = seqembed("train", corpus, "--out", tmp_path / "run", *small, *sets)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert not (tmp_path / "run" / "last.pt").exists()
