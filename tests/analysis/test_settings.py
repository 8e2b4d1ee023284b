"""AnalysisSettings is the one place the analysis defaults live, and it
refuses a value out of range in one line that names the setting."""

from __future__ import annotations

import inspect

import pytest
from helpers import assert_clean_error, seqembed

from seqembed.analysis.embedding import EmbeddingAnalysis
from seqembed.analysis.settings import DEFAULTS, AnalysisSettings, setting_names
from seqembed.errors import InputError

BAD = [
    ("sides", ()),
    ("sides", ("src", "fr")),
    ("sides", ("src", "src")),
    ("min_freq", -1),
    ("min_freq", 1.5),
    ("words", ()),
    ("words", ("天气", "")),
    ("groups", {"g": []}),
    ("groups", {"g": "天气 好"}),
    ("pairs", (("天气",),)),
    ("top_n", 0),
    ("k_std", 0.0),
    ("k_std", float("nan")),
    ("mad_threshold", -3.5),
    ("n_permutations", 999),
    ("alpha", 0.0),
    ("alpha", 1.0),
    ("correction", "bonferroni"),
    ("shaped_null_repeats", -1),
    ("random_state", "0"),
    ("alignment", "yes"),
    ("context_words", ()),
]


@pytest.mark.parametrize("name, value", BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_a_bad_setting_is_refused_by_name(name, value):
    with pytest.raises(InputError) as caught:
        AnalysisSettings(**{name: value})
    message = str(caught.value)
    assert f"analysis setting {name} " in message
    assert "\n" not in message


def test_good_settings_are_kept_and_sequences_become_tuples():
    settings = AnalysisSettings(
        sides=["tgt"],
        words=["天气", "好"],
        pairs=[["天气", "好"]],
        groups={"g": ["天气", "好"]},
        alpha=0.01,
        correction="bh",
        n_permutations=5000,
        shaped_null_repeats=0,
    )
    assert settings.sides == ("tgt",)
    assert settings.words == ("天气", "好")
    assert settings.pairs == (("天气", "好"),)
    assert settings.alpha == 0.01 and settings.n_permutations == 5000


def test_the_estimator_takes_its_defaults_from_the_settings():
    parameters = inspect.signature(EmbeddingAnalysis).parameters
    shared = [name for name in parameters if name in setting_names()]
    assert len(shared) == 8  # all but max_pairs
    for name in shared:
        assert parameters[name].default == getattr(DEFAULTS, name), name
    estimator = EmbeddingAnalysis()
    assert estimator.top_n == AnalysisSettings().top_n
    assert estimator.shaped_null_repeats == AnalysisSettings().shaped_null_repeats


@pytest.mark.slow
def test_the_cli_reports_a_bad_setting_in_one_line(seed_run):
    # The flag's own range check answers first, naming the flag.
    result = seqembed("analyze", seed_run, "--alpha", "1.5", "--no-contextual")
    assert_clean_error(result, "--alpha must be between 0 and 1", "1.5")
