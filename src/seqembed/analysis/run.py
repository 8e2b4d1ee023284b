"""Analyse a trained run: load it once, run every analysis, one JSON result.

``analyze_run(run_dir, settings)`` is what ``seqembed analyze`` calls. It
reads the checkpoint (trained and initial embeddings), the training sentences
(for co-occurrence and contextual states) and the per-epoch snapshots, and
returns plain data that validates against ``resources/analysis.schema.json``::

    format, version     "seqembed-analysis", 1
    run, checkpoint     where it came from (the folder, the file's name)
    checkpoint_line     that file and how far its model had trained
    settings            the AnalysisSettings used
    sides               {"src": SIDE, "tgt": SIDE} for the sides asked for
    alignment           alignment.alignment_report(...) or null
    contextual          {"summary": ..., "words": [...]} or null
    movement            {"src": ..., "tgt": ...} per-epoch movement, or null

    SIDE = EmbeddingAnalysis.result_ plus {"side", "words_from"}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import yaml

from seqembed.analysis.alignment import alignment_findings, alignment_report
from seqembed.analysis.embedding import EmbeddingAnalysis
from seqembed.analysis.settings import AnalysisSettings
from seqembed.data.prepare import training_tokens, training_words
from seqembed.errors import InputError
from seqembed.files import write_json_and_markdown
from seqembed.nmt.checkpoint import (
    describe_checkpoint,
    load_checkpoint,
    load_tables,
    resolve_checkpoint,
)
from seqembed.textfile import read_text

log = logging.getLogger(__name__)

FORMAT = "seqembed-analysis"
VERSION = 1

# The design document's four topic groups and six co-occurring pairs.
DESIGN_GROUPS = {
    "时间天气": ["今天", "天气", "好"],
    "AI技术": ["人工", "智能", "机器", "学习"],
    "NLP": ["自然", "语言", "处理"],
    "情感": ["爱", "有趣", "强大"],
}
DESIGN_PAIRS = [
    ("我", "爱"),
    ("今天", "天气"),
    ("天气", "好"),
    ("机器", "学习"),
    ("深度", "学习"),
    ("人工", "智能"),
]


def analyze_run(
    run_dir: Path,
    settings: AnalysisSettings,
    progress: Callable[[str], None] = lambda part: None,
) -> dict:
    """``progress`` is told each part ("src", "tgt", "alignment",
    "contextual", "movement") as it starts."""
    run_dir = Path(run_dir)
    checkpoint_path = resolve_checkpoint(run_dir, settings.checkpoint)
    run_dir = checkpoint_path.parent
    state = load_checkpoint(checkpoint_path)
    trained = load_tables(state)
    initial = load_tables(state, initial=True)
    if settings.aggregate_words:
        trained, initial, split = _word_tables(run_dir, state, trained, initial)
    else:
        split = training_tokens(run_dir, state)
    sentences = {"src": split.src, "tgt": split.tgt}

    result = {
        "format": FORMAT,
        "version": VERSION,
        "run": str(run_dir),
        "checkpoint": checkpoint_path.name,
        "checkpoint_line": describe_checkpoint(checkpoint_path, state),
        "settings": _settings_dict(settings),
        "sides": {},
        "alignment": None,
        "contextual": None,
        "movement": None,
    }
    for side in settings.sides:
        progress(side)
        result["sides"][side] = _side(
            side, trained, initial, sentences[side], settings, run_dir
        )
    if not settings.aggregate_words:  # snapshots hold pieces, not words
        for side, data in result["sides"].items():
            table = _side_table(side, trained, settings, run_dir)
            _pair_trust(data["similar_pairs"], checkpoint_path, state, side, table,
                        settings.checkpoint)  # fmt: skip
    if settings.alignment:
        progress("alignment")
        result["alignment"] = alignment_report(
            trained, initial or None, random_state=settings.random_state
        )
        result["alignment"]["findings"] = alignment_findings(
            result["alignment"], settings.alpha, settings.correction
        )
    if settings.contextual:
        progress("contextual")
        result["contextual"] = _contextual(run_dir, state, settings)
    if settings.movement:
        progress("movement")
        result["movement"] = _movement(run_dir, state, settings)
    return result


def _side_table(side: str, trained, settings, run_dir: Path):
    table = trained[side].words(
        settings.min_freq,
        settings.include_specials,
        list(settings.words) if settings.words else None,
    )
    if len(table) < 2:
        raise InputError(
            f"fewer than two {side} words to analyse (check --words and --min-freq)",
            run_dir,
        )
    return table


def _side(side: str, trained, initial, sentences, settings, run_dir: Path) -> dict:
    """One side's EmbeddingAnalysis result, with where its words came from."""
    table = _side_table(side, trained, settings, run_dir)
    analysis = EmbeddingAnalysis(
        top_n=settings.top_n,
        k_std=settings.k_std,
        mad_threshold=settings.mad_threshold,
        n_permutations=settings.n_permutations,
        alpha=settings.alpha,
        correction=settings.correction,
        shaped_null_repeats=settings.shaped_null_repeats,
        random_state=settings.random_state,
    ).fit(
        table,
        initial.get(side),
        groups=_groups_for(settings.groups, trained[side]),
        sentences=sentences,
        chosen_pairs=[p for p in settings.pairs if _on_side(p, trained[side])],
    )
    return {
        "side": side,
        "words_from": "word list" if settings.words else "vocabulary",
        **analysis.result_,
    }


def _pair_trust(
    similar: dict, checkpoint: Path, state: dict, side: str, table, which: str
):
    """Each top pair's stability across the epochs before the checkpoint and
    across seeds (analysis.trust: their ``which`` checkpoint), in place;
    nothing when neither exists."""
    from seqembed.analysis.trust import NOT_MEASURED, NeighbourStability

    pairs = [(p["a"], p["b"]) for p in similar["pairs"]]
    words = list(dict.fromkeys(w for pair in pairs for w in pair))
    if not words:
        return
    trust = NeighbourStability(checkpoint=which).fit(
        checkpoint, side, table, words, state
    )
    found = trust.pair_stability(pairs)
    if all(f["label"] == NOT_MEASURED for f in found):
        return
    similar["stability"] = trust.summary()
    for pair, stability in zip(similar["pairs"], found):
        pair["stability"] = stability


def _word_tables(run_dir: Path, state: dict, trained: dict, initial: dict):
    """The subword sides' tables as words (``subwords.aggregate_tables``),
    and the training text as those words."""
    from seqembed.data.subwords import from_state
    from seqembed.vectors.aggregate import aggregate_tables

    models = from_state(state)
    if not models:
        raise InputError(
            "--aggregate-words needs a run with a SentencePiece side "
            "(data.src_segmentation or data.tgt_tokenization: sentencepiece)",
            run_dir,
        )
    split = training_words(run_dir, state)
    sentences = {"src": split.src, "tgt": split.tgt}
    trained = aggregate_tables(trained, models, sentences)
    initial = aggregate_tables(initial, models, sentences) if initial else initial
    return trained, initial, split


def _settings_dict(settings: AnalysisSettings) -> dict:
    data = asdict(settings)
    data["sides"] = list(settings.sides)
    data["words"] = list(settings.words) if settings.words else None
    data["pairs"] = [list(p) for p in settings.pairs]
    data["context_words"] = (
        list(settings.context_words) if settings.context_words else None
    )
    return data


def _on_side(pair: tuple[str, str], table) -> bool:
    return any(word in table for word in pair)


def _groups_for(groups: dict[str, list[str]], table) -> dict[str, list[str]]:
    """The groups with at least one word in this side's vocabulary."""
    return {
        name: words for name, words in groups.items() if any(w in table for w in words)
    }


def _contextual(run_dir: Path, state: dict, settings: AnalysisSettings) -> dict:
    from seqembed.analysis.contextual import ContextualStates
    from seqembed.analysis.words import training_sentences

    states = ContextualStates(
        random_state=settings.random_state, device=settings.device
    ).fit(state, training_sentences(run_dir, state))
    words = list(settings.context_words or states.default_words(n=5))
    return {"summary": states.summary(), "words": states.report(words)}


def _movement(run_dir: Path, state: dict, settings: AnalysisSettings) -> dict | None:
    from seqembed.analysis.movement import EmbeddingMovement

    if not any((run_dir / "embeddings").glob("epoch-*.pt")):
        return None
    return {
        side: EmbeddingMovement(
            side=side,
            min_freq=settings.min_freq,
            only=list(settings.words) if settings.words else None,
            random_state=settings.random_state,
        )
        .fit(run_dir, state[f"{side}_vocab"])
        .to_dict()
        for side in settings.sides
    }


# ---------------------------------------------------------------- inputs


def read_groups(path: Path) -> dict[str, list[str]]:
    """Topic groups from YAML: ``name: [word, word, ...]`` (or a string of
    space-separated words). Mistakes name the file and line."""
    path = Path(path)
    text = read_text(path)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", path, line) from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise InputError("expected a mapping of group name -> list of words", path)
    groups = {}
    for key, value in root.value:
        line = key.start_mark.line + 1
        name = str(key.value)
        if isinstance(value, yaml.ScalarNode):
            words = str(value.value).split()
        elif isinstance(value, yaml.SequenceNode) and all(
            isinstance(item, yaml.ScalarNode) for item in value.value
        ):
            words = [str(item.value) for item in value.value]
        else:
            raise InputError(f"group {name!r}: expected a list of words", path, line)
        if len(words) < 2:
            raise InputError(f"group {name!r}: needs at least two words", path, line)
        repeated = sorted({w for w in words if words.count(w) > 1})
        if repeated:
            raise InputError(
                f"group {name!r}: {' '.join(repeated)} given twice", path, line
            )
        if name in groups:
            raise InputError(f"group {name!r} is given twice", path, line)
        groups[name] = words
    if not groups:
        raise InputError("no groups in the file", path)
    return groups


def builtin_groups() -> dict[str, list[str]]:
    resource = resources.files("seqembed") / "resources" / "builtin_groups.yaml"
    with resources.as_file(resource) as path:
        return read_groups(path)


def parse_pair(text: str) -> tuple[str, str]:
    """``我-爱`` or ``我,爱`` -> ("我", "爱")."""
    for separator in (",", "-", ":"):
        parts = text.split(separator)
        if len(parts) == 2 and all(part.strip() for part in parts):
            return parts[0].strip(), parts[1].strip()
    raise InputError(f"cannot read the word pair {text!r} (write it as A-B)")


def write_analysis(result: dict, folder: Path) -> tuple[Path, Path]:
    """``analysis.json`` and ``analysis.md`` in ``folder``, atomically."""
    from seqembed.analysis.text import to_markdown

    return write_json_and_markdown(folder, "analysis", result, to_markdown(result))


def schema() -> dict:
    resource = resources.files("seqembed") / "resources" / "analysis.schema.json"
    return json.loads(resource.read_text(encoding="utf-8"))
