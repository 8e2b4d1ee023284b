import dataclasses
import typing
from pathlib import Path

import pytest

from seqembed.config import (
    Config,
    fields,
    from_dict,
    load_config,
    sections,
    to_dict,
    validate,
)
from seqembed.configfile import field_range, field_spelling
from seqembed.errors import InputError


def test_defaults_round_trip_through_dict():
    config = Config()
    assert from_dict(to_dict(config)) == config


def test_yaml_and_overrides_apply_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "model:\n  attention: bahdanau\n  hidden_size: 64\ntrain:\n  lr: 0.01\n"
    )
    config = load_config(path, ["train.lr=2e-3", "model.attention=none"])
    assert config.model.hidden_size == 64
    assert config.model.attention == "none"
    assert config.train.lr == pytest.approx(2e-3)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("modle:\n  hidden_size: 3\n", "unknown section 'modle'"),
        ("model:\n  hiden_size: 3\n", "unknown key 'model.hiden_size'"),
        ("model:\n  hidden_size: big\n", "model.hidden_size must be int"),
        ("train:\n  batch_size: -4\n", "train.batch_size must be > 0"),
        ("model:\n  attention: magic\n", "model.attention must be one of"),
        ("model: [1, 2\n", "invalid YAML"),
    ],
)
def test_bad_config_files_name_the_file_and_problem(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("model.nope=1", "unknown key 'model.nope'"),
        ("nope.x=1", "unknown section 'nope'"),
        ("model.hidden_size", "section.key=value"),
        ("train.lr=fast", "train.lr must be float"),
    ],
)
def test_bad_overrides(override, fragment):
    with pytest.raises(InputError, match=fragment.replace(".", r"\.")):
        load_config(None, [override])


def test_max_minutes_takes_fractions():
    assert load_config(None, ["train.max_minutes=0.5"]).train.max_minutes == 0.5


# ---------------------------------------------------------------- ranges


def numeric_keys():
    return [
        key
        for key, spec in fields().items()
        if typing.get_type_hints(sections()[key.split(".")[0]])[spec.name]
        in (int, float, float | None, int | None)
    ]


def test_every_numeric_key_declares_a_range_its_default_is_in():
    keys = numeric_keys()
    assert len(keys) > 40 and "data.tokenize_processes" in keys
    for key in keys:
        spec = fields()[key]
        bounds = field_range(spec)
        assert bounds is not None and str(bounds), key
        if spec.default is not None:
            assert spec.default in bounds, key


def outside(bounds) -> list[float]:
    """Values just outside each bound the range has."""
    values = []
    if bounds.ge is not None:
        values.append(bounds.ge - 1)
    if bounds.gt is not None:
        values.append(bounds.gt)
    if bounds.le is not None:
        values.append(bounds.le + 1)
    if bounds.lt is not None:
        values.append(bounds.lt)
    return values


@pytest.mark.parametrize("key", numeric_keys())
def test_a_value_outside_the_range_is_one_line_naming_key_and_range(key):
    bounds = field_range(fields()[key])
    assert outside(bounds)
    for value in outside(bounds):
        with pytest.raises(InputError) as info:
            load_config(None, [f"{key}={value}"])
        message = str(info.value)
        assert f"{key} must be {bounds}, got " in message and "\n" not in message


def test_ranges_read_as_the_docs_say():
    assert str(field_range(fields()["data.tokenize_processes"])) == ">= 1 and <= 256"
    assert str(field_range(fields()["model.dropout"])) == ">= 0 and < 1"
    assert str(field_range(fields()["train.batch_size"])) == "> 0"
    with pytest.raises(InputError, match=r"data\.tokenize_processes must be >= 1"):
        load_config(None, ["data.tokenize_processes=0"])


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_not_a_finite_number_is_refused(value):
    with pytest.raises(InputError, match=r"train\.lr must be"):
        load_config(None, [f"train.lr={value}"])


def test_an_empty_path_is_refused_and_null_is_none():
    with pytest.raises(InputError, match="data.user_dict must be a path or null"):
        load_config(None, ["data.user_dict="])
    assert load_config(None, ["data.user_dict=null"]).data.user_dict is None


def test_an_output_length_of_zero_is_refused():
    with pytest.raises(InputError, match=r"decode\.max_len_b must be >= 1 when"):
        load_config(None, ["decode.max_len_a=0.5", "decode.max_len_b=0"])
    assert load_config(None, ["decode.max_len_b=0"]).decode.max_len_b == 0


def test_a_checkpoints_config_is_read_with_the_ranges_of_its_time():
    """A run started before a range was narrowed still loads (translate,
    resume); the same values from a user are refused."""
    old = to_dict(Config())
    old["data"]["heldout_fraction"] = 0.8
    old["train"]["seed"] = -3
    config = from_dict(old, "checkpoint")
    assert (config.data.heldout_fraction, config.train.seed) == (0.8, -3)
    with pytest.raises(InputError, match="heldout_fraction must be"):
        from_dict(old, "config")


def test_validate_checks_a_config_built_in_python():
    config = Config()
    bad = dataclasses.replace(
        config, data=dataclasses.replace(config.data, tokenize_processes=0)
    )
    validate(config)
    with pytest.raises(InputError, match="data.tokenize_processes must be >= 1"):
        validate(bad)


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr_shedule=step", "--set train.lr_shedule=step: unknown key "
         "'train.lr_shedule'; did you mean 'train.lr_schedule'?"),
        ("trian.lr=0.01", "--set trian.lr=0.01: unknown section 'trian'; did you "
         "mean 'train'? (sections: data, vocab, model, train, decode)"),
        ("nope.lr=0.01", "--set nope.lr=0.01: unknown section 'nope' (sections: "
         "data, vocab, model, train, decode)"),
        ("model.lr=0.01", "unknown key 'model.lr'; did you mean 'train.lr'?"),
        ("data.beam_sise=2", "unknown key 'data.beam_sise'; did you mean "
         "'decode.beam_size'?"),
    ],
)  # fmt: skip
def test_a_mistyped_name_gets_the_closest_valid_one(override, message):
    with pytest.raises(InputError) as info:
        load_config(None, [override])
    assert message in str(info.value)


def test_with_nothing_close_the_sections_keys_are_listed():
    with pytest.raises(InputError) as info:
        load_config(None, ["vocab.zzzz=1"])
    assert str(info.value).endswith(
        "unknown key 'vocab.zzzz' (vocab's keys: min_freq, max_size)"
    )


def test_a_config_file_gets_the_closest_name_with_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.01\n  lr_shedule: step\ntrian:\n  epochs: 1\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:3: unknown key 'train.lr_shedule'; did you mean 'train.lr_schedule'?"
    )
    path.write_text("trian:\n  epochs: 1\n")
    with pytest.raises(InputError, match=r":1: unknown section 'trian'; did you"):
        load_config(path)


# ---------------------------------------------------------------- docs


def shown(value) -> str:
    """A default as docs/settings.md writes it (YAML's spelling)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def valid_values(key: str) -> str:
    spec = fields()[key]
    hint = typing.get_type_hints(sections()[key.split(".")[0]])[spec.name]
    if typing.get_origin(hint) is typing.Literal:
        return ", ".join(typing.get_args(hint))
    if hint is bool:
        return "true, false"
    if field_spelling(spec):  # "auto, cpu, ... or mps", listed as a Literal is
        return field_spelling(spec).replace(" or ", ", ")
    bounds = field_range(spec)
    return str(bounds) if bounds is not None else "a path, or null"


def test_docs_settings_lists_every_key_with_its_default_and_range():
    docs = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
    rows = {}
    for line in docs.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].count(".") == 1:
            rows[cells[0].strip("`")] = cells[1:3]
    assert set(rows) == set(fields()), "add (or remove) rows in docs/settings.md"
    for key, spec in fields().items():
        assert rows[key] == [shown(spec.default), valid_values(key)], key


def test_values_kept_from_a_runs_own_config_keep_its_ranges(tmp_path):
    from seqembed.config import SAVED, read_run_config, save_config

    old = to_dict(Config())
    old["data"]["heldout_fraction"] = 0.8
    path = tmp_path / "config.yaml"
    save_config(from_dict(old, SAVED), path)
    with pytest.raises(InputError, match="heldout_fraction must be"):
        load_config(path)  # as a new config: today's ranges
    base = read_run_config(path)
    config = load_config(None, ["train.epochs=7"], base=base)
    assert (config.data.heldout_fraction, config.train.epochs) == (0.8, 7)
    with pytest.raises(InputError, match=r"--set: data\.heldout_fraction must be"):
        load_config(None, ["data.heldout_fraction=0.9"], base=base)
    with pytest.raises(InputError, match=r"--set: train\.epochs must be > 0"):
        load_config(None, ["train.epochs=0"], base=base)
