import pytest

from seqembed.config import Config, from_dict, load_config, to_dict
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
