"""The built-in data and the two demo experiments.

* ``builtin`` trains a small attention model on the corpus that ships with the
  package (raw Chinese, segmented by jieba with the shipped user dictionary).
* ``seed-example`` reproduces the design document's experiment: five
  pre-segmented pairs, 64-dimensional embeddings, one LSTM layer, no
  attention, 50 epochs of Adam, cross-entropy that ignores padding.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from seqembed.analysis.run import (
    DESIGN_GROUPS,
    DESIGN_PAIRS,
    analyze_run,
    builtin_groups,
    write_analysis,
)
from seqembed.analysis.settings import AnalysisSettings
from seqembed.config import Config, load_config
from seqembed.data.corpus import Pair, SkipCounts, read_tsv
from seqembed.data.prepare import read_splits
from seqembed.errors import InputError
from seqembed.nmt.evaluation import Scores, Translator, score
from seqembed.nmt.training import Reporter, train

# The design document's five pairs, segmented as it gives them.
SEED_PAIRS = [
    ("我 爱 自然 语言 处理", "I love natural language processing"),
    ("今天 天气 很 好", "Today weather is good"),
    ("人工 智能 改变 世界", "Artificial intelligence changes the world"),
    ("机器 学习 很 有趣", "Machine learning is interesting"),
    ("深度 学习 很 强大", "Deep learning is powerful"),
]

SEED_EXAMPLE_SETTINGS = [
    "data.src_segmentation=pretokenized",
    "data.tgt_tokenization=pretokenized",
    "data.lowercase=false",
    "data.heldout_fraction=0",  # five pairs: train on all, validate on them
    "vocab.min_freq=1",
    "model.emb_size=64",
    "model.hidden_size=128",
    "model.num_layers=1",
    "model.dropout=0",
    "model.bidirectional=false",
    "model.attention=none",
    "model.init=pytorch",  # nn.Embedding's N(0, 1) rows, as in the design
    "train.epochs=50",
    "train.batch_size=1",
    "train.lr=0.001",  # Adam's default
    "train.lr_schedule=none",
    "train.patience=0",  # all 50 epochs, as in the design
]

BUILTIN_SETTINGS = [
    "data.valid_size=30",
    "data.test_size=30",
    "vocab.min_freq=1",
    "model.emb_size=64",
    "model.hidden_size=128",
    "model.dropout=0.1",
    "model.attention=luong",
    "train.epochs=40",
    "train.batch_size=16",
    "train.lr=0.003",
    "train.patience=0",
    "train.lr_schedule=none",
]


def resource_path(name: str) -> Path:
    return Path(str(resources.files("seqembed") / "resources" / name))


def builtin_pairs() -> list[Pair]:
    """The built-in corpus: English TAB Chinese TAB topic, raw Chinese."""
    return read_tsv(resource_path("builtin.tsv"), 1, 0, 10_000, SkipCounts())


def builtin_user_dict() -> str:
    return resource_path("builtin_userdict.txt").read_text(encoding="utf-8")


def seed_pairs() -> list[Pair]:
    return [Pair(zh, en, line) for line, (zh, en) in enumerate(SEED_PAIRS, start=1)]


def demo_config(seed_example: bool, seed: int, extra: list[str] = ()) -> Config:
    settings = SEED_EXAMPLE_SETTINGS if seed_example else BUILTIN_SETTINGS
    return load_config(None, [*settings, f"train.seed={seed}", *extra])


# Demo sentences from the training data, then held-out test pairs.
SHOWN_TRAINING = ["我爱自然语言处理", "今天天气很好", "机器学习很有趣"]
SHOWN_HELD_OUT = 3


@dataclass
class DemoResult:
    run_dir: Path
    final_loss: float
    # (source, translation, reference for held-out sentences or None)
    translations: list[tuple[str, str, str | None]]
    exact: int | None = None  # seed example: exact translations out of 5
    test_scores: Scores | None = None  # built-in: the held-out test split
    analysis: dict | None = None  # run_analysis.analyze_run's result
    report: Path | None = None  # RUN/report.html


def prepare_demo_dir(out: Path) -> None:
    """A demo run replaces an earlier demo run, and nothing else."""
    marker = out / ".seqembed-demo"
    if (out / "last.pt").exists():
        if not marker.exists():
            raise InputError(
                "already holds a run that is not a demo; choose another --out", out
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "written by `seqembed demo`; the next demo may replace this run\n"
    )


def demo_analysis_settings(seed_example: bool) -> AnalysisSettings:
    """The seed example analyses the design's 18 source words as the design
    does (top 8 pairs, its four groups, its six pairs); the built-in run both
    sides with the corpus's topic groups."""
    if seed_example:
        return AnalysisSettings(
            sides=("src",),
            groups=DESIGN_GROUPS,
            pairs=tuple(DESIGN_PAIRS),
            top_n=8,
            alignment=False,  # 18 words: too few dictionary entries to test
        )
    return AnalysisSettings(groups=builtin_groups(), top_n=10)


def run_demo(
    out: Path, seed_example: bool, seed: int = 1, reporter: Reporter | None = None
) -> DemoResult:
    prepare_demo_dir(out)
    config = demo_config(seed_example, seed)
    if seed_example:
        result = train(config, out, seed_pairs(), reporter=reporter)
    else:
        result = train(
            config,
            out,
            builtin_pairs(),
            user_dict=builtin_user_dict(),
            reporter=reporter,
        )
    translator = Translator.from_checkpoint(out / "last.pt")
    final_loss = result.final_metrics["train_loss"]
    if seed_example:
        sources = [zh for zh, _ in SEED_PAIRS]
        outputs = translator.translate(sources)
        exact = sum(o == en for o, (_, en) in zip(outputs, SEED_PAIRS))
        rows = [(src, o, None) for src, o in zip(sources, outputs)]
        analysis = _analyse(out, seed_example)
        return DemoResult(
            out,
            final_loss,
            rows,
            exact=exact,
            analysis=analysis,
            report=_report(out, analysis),
        )
    test = read_splits(out)["test"]
    outputs = translator.translate([p.src for p in test])
    scores = score(outputs, [p.tgt for p in test], config.data.lowercase)
    rows = [
        (src, o, None)
        for src, o in zip(SHOWN_TRAINING, translator.translate(SHOWN_TRAINING))
    ]
    rows += [(p.src, o, p.tgt) for p, o in list(zip(test, outputs))[:SHOWN_HELD_OUT]]
    analysis = _analyse(out, False)
    return DemoResult(
        out,
        final_loss,
        rows,
        test_scores=scores,
        analysis=analysis,
        report=_report(out, analysis),
    )


def _analyse(out: Path, seed_example: bool) -> dict:
    """Analyse the final model (the design analyses it after all epochs) and
    write RUN/analysis/analysis.{json,md}."""
    result = analyze_run(out / "last.pt", demo_analysis_settings(seed_example))
    write_analysis(result, out / "analysis")
    return result


def _report(out: Path, analysis: dict) -> Path:
    """RUN/report.html, of the model the analysis describes."""
    from seqembed.report.build import write_report

    return write_report(out / analysis["checkpoint"], analysis=analysis)
