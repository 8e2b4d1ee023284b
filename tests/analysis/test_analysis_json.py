"""The analysis and stability JSON against their schemas: real results of the
session's runs validate, the schemas are a contract (a missing, mistyped or
unknown field fails), and the files are plain JSON (no NaN, no numpy types)."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest
from analysed import BUILTIN_SETTINGS, SEED_SETTINGS
from jsonschema import Draft202012Validator

from seqembed.analysis.run import analyze_run, schema
from seqembed.analysis.settings import AnalysisSettings
from seqembed.analysis.stability import stability_report
from seqembed.cli.demo import demo_config, seed_pairs
from seqembed.nmt.training import train


def resource_schema(name: str) -> dict:
    resource = resources.files("seqembed") / "resources" / name
    return json.loads(resource.read_text(encoding="utf-8"))


def analysis_validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def stability_validator() -> Draft202012Validator:
    return Draft202012Validator(resource_schema("stability.schema.json"))


def errors_of(validator: Draft202012Validator, data: dict) -> list[str]:
    return [
        f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(data)
    ]


def assert_plain_json(data, path: str = "") -> None:
    """Only dict/list/str/int/float/bool/None (exact types: a numpy scalar that
    subclasses float would still be a leak), and no NaN or Infinity."""
    json.dumps(data, allow_nan=False, ensure_ascii=False)
    if type(data) is dict:
        for key, value in data.items():
            assert type(key) is str, f"{path}: key {key!r}"
            assert_plain_json(value, f"{path}/{key}")
    elif type(data) is list:
        for i, value in enumerate(data):
            assert_plain_json(value, f"{path}/{i}")
    else:
        assert type(data) in (str, int, float, bool, type(None)), (
            f"{path}: {type(data).__name__}"
        )


# ---------------------------------------------------------------- fixtures
# seed_result, builtin_result, bare_result: tests/analysis/conftest.py


@pytest.fixture(scope="module")
def seed_runs(seed_run, tmp_path_factory) -> list:
    """Three runs of the seed example that differ only in their seed."""
    runs = [seed_run]
    for seed in (2, 3):
        run_dir = tmp_path_factory.mktemp(f"seed-{seed}")
        train(demo_config(seed_example=True, seed=seed), run_dir, seed_pairs())
        runs.append(run_dir)
    return runs


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize("name", ["analysis.schema.json", "stability.schema.json"])
def test_schema_is_a_valid_draft_2020_12_schema(name):
    document = resource_schema(name)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


@pytest.mark.parametrize("name", ["analysis.schema.json", "stability.schema.json"])
def test_every_field_is_described(name):
    """The schema is the documentation: each property says what it means,
    itself or through the definition it refers to."""
    document = resource_schema(name)
    undescribed = []

    def described(node: dict) -> bool:
        if "description" in node:
            return True
        target = node.get("$ref", "")
        return target.startswith("#/$defs/") and described(
            document["$defs"][target.removeprefix("#/$defs/")]
        )

    def visit(node, path: str) -> None:
        if isinstance(node, dict):
            # Fields of object schemas (not the conditions under if/then).
            fields = node.get("properties", {}) if "type" in node else {}
            for key, value in fields.items():
                if not described(value):
                    undescribed.append(f"{path}/{key}")
            for key, value in node.items():
                visit(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                visit(value, f"{path}/{i}")

    visit(document, "")
    assert undescribed == []


def test_schema_is_the_one_the_package_loads():
    assert schema() == resource_schema("analysis.schema.json")


# ------------------------------------------------------- real results validate


@pytest.mark.slow
def test_seed_example_result_validates(seed_result):
    assert errors_of(analysis_validator(), seed_result) == []
    # The paths the schema allows null for are the ones this run takes.
    assert seed_result["alignment"]["status"] == "not enough lexicon entries"
    assert seed_result["alignment"]["spaces"] == {}
    assert seed_result["alignment"]["findings"] == []
    words = {w["word"]: w for w in seed_result["contextual"]["words"]}
    assert words["今天"]["self_similarity"] is None
    assert words["今天"]["reason"]
    side = seed_result["sides"]["src"]
    assert all(
        p["shaped_chance_cosine"] is None for p in side["similar_pairs"]["pairs"]
    )
    assert seed_result["movement"]["src"]["epochs"][0]["step_mean"] is None


@pytest.mark.slow
def test_builtin_result_validates(builtin_result):
    assert errors_of(analysis_validator(), builtin_result) == []
    assert set(builtin_result["sides"]) == {"src", "tgt"}
    assert builtin_result["alignment"]["status"] == "ok"
    alignment = builtin_result["alignment"]
    assert alignment["spaces"]["tgt"]["initial"] is not None
    assert [f["space"] for f in alignment["findings"]] == list(alignment["spaces"])
    # The built-in groups are Chinese: none on the English side.
    assert builtin_result["sides"]["tgt"]["groups"] is None
    groups = {g["name"]: g for g in builtin_result["sides"]["src"]["groups"]["groups"]}
    assert groups["tiny"]["within"] is None and groups["tiny"]["p_value"] is None
    chosen = {
        (p["a"], p["b"]): p for p in builtin_result["sides"]["src"]["chosen_pairs"]
    }
    assert chosen["学习", "不存在"]["cosine"] is None
    assert chosen["学习", "不存在"]["missing"] == ["不存在"]


@pytest.mark.slow
def test_run_without_initial_table_or_snapshots_validates(bare_result):
    assert errors_of(analysis_validator(), bare_result) == []
    assert bare_result["movement"] is None
    side = bare_result["sides"]["src"]
    assert side["movement"] is None
    assert side["statistics"]["initial"] is None
    assert side["similar_pairs"]["initial_top"] == []
    assert all(p["initial_cosine"] is None for p in side["similar_pairs"]["pairs"])
    assert side["outliers"]["std_rule"]["initial_rate"] is None
    assert side["cooccurrence"]["initial_difference"] is None


@pytest.mark.slow
def test_results_are_plain_json(seed_result, builtin_result, bare_result):
    for result in (seed_result, builtin_result, bare_result):
        assert_plain_json(result)
        assert json.loads(json.dumps(result, allow_nan=False)) == result


# ------------------------------------------------- the schema is a contract


def _top_pair(result):
    return result["sides"]["src"]["similar_pairs"]["pairs"][0]


def _first_test(result):
    return result["sides"]["src"]["findings"]["tests"][0]


BREAKAGES = {
    "missing top-level key": lambda r: r.pop("settings"),
    "missing nested key": lambda r: _top_pair(r).pop("p_value"),
    "missing side section": lambda r: r["sides"]["src"].pop("findings"),
    "number as string": lambda r: r["sides"]["src"].update(n_words="18"),
    "null where a number is required": lambda r: r["sides"]["src"]["statistics"][
        "overall"
    ].update(norm_mean=None),
    "p-value above 1": lambda r: _top_pair(r).update(p_value=1.5),
    "wrong format": lambda r: r.update(format="seqembed-stability"),
    "other version": lambda r: r.update(version=2),
    "unknown top-level key": lambda r: r.update(extra=1),
    "unknown key in a finding": lambda r: _first_test(r).update(p_adj=0.1),
    "unknown figure": lambda r: _first_test(r).update(figure="similar_pair"),
    "unknown side": lambda r: r["sides"].update(fr=r["sides"]["src"]),
    "self-similarity as text": lambda r: r["contextual"]["words"][0].update(
        self_similarity="high"
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
def test_broken_result_fails_validation(seed_result, breakage):
    broken = copy.deepcopy(seed_result)
    BREAKAGES[breakage](broken)
    assert errors_of(analysis_validator(), broken) != []


@pytest.mark.slow
def test_alignment_status_and_spaces_must_agree(builtin_result):
    """Scores only with status ok; status ok only with scores."""
    not_ok = copy.deepcopy(builtin_result)
    not_ok["alignment"]["status"] = "not enough lexicon entries"
    assert errors_of(analysis_validator(), not_ok) != []
    no_spaces = copy.deepcopy(builtin_result)
    no_spaces["alignment"]["spaces"] = {}
    assert errors_of(analysis_validator(), no_spaces) != []


# ---------------------------------------------------------------- stability


@pytest.mark.slow
def test_stability_report_validates(seed_runs):
    settings = AnalysisSettings(
        sides=SEED_SETTINGS.sides,
        groups=SEED_SETTINGS.groups,
        pairs=SEED_SETTINGS.pairs,
        top_n=SEED_SETTINGS.top_n,
        contextual=False,
        movement=False,
    )
    results = [analyze_run(run, settings) for run in seed_runs]
    report = stability_report(seed_runs, results, settings)

    assert errors_of(stability_validator(), report) == []
    assert_plain_json(report)
    assert report["alignment"] == []  # too few dictionary words to align
    figures = report["sides"]["src"]["figures"]
    assert figures and all(f["n_runs"] == 3 for f in figures)

    broken = copy.deepcopy(report)
    broken["sides"]["src"]["figures"][0]["stable"] = True
    assert errors_of(stability_validator(), broken) != []
    broken = copy.deepcopy(report)
    del broken["runs"]
    assert errors_of(stability_validator(), broken) != []


@pytest.mark.slow
def test_stability_report_with_alignment_validates(builtin_run, builtin_result):
    """The alignment rows need runs whose alignment is ok; the same run twice
    gives them (with sd 0) without training another."""
    runs = [builtin_run, builtin_run]
    report = stability_report(runs, [builtin_result] * 2, BUILTIN_SETTINGS)

    assert errors_of(stability_validator(), report) == []
    assert_plain_json(report)
    assert {(row["space"], row["retrieval"]) for row in report["alignment"]} >= {
        ("tgt", "nn"),
        ("tgt", "csls"),
    }
