"""A trained run as one object: translate with it, query its embeddings.

::

    run = seqembed.load_run("runs/zh-en")        # a run folder or a .pt file
    run = seqembed.load_run("runs/zh-en", checkpoint="last")  # not best.pt
    run.checkpoint_line    # 'runs/zh-en/last.pt (epoch E of N, valid BLEU B)'
    run.translate("今天天气很好")                  # str in, str out
    run.translate(["我爱你。", "你好"], beam=5)    # list in, list out
    run.translate_detailed("量子计算机")           # tokens, unknown words, ...
    run.src.most_similar("天气", topn=10)          # gensim's names
    run.initial.src.similarity("猫", "狗")         # before training

Everything comes from the checkpoint file alone (weights, config,
vocabularies, the jieba user dictionary, SentencePiece models, the initial
embeddings); the run folder around it adds the training text, metrics and
snapshots that ``analyze`` and the report read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from seqembed.api.progress import Progress, ProgressCallback, report
from seqembed.config import Config
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import (
    describe_checkpoint,
    load_checkpoint,
    load_tables,
    resolve_checkpoint,
)
from seqembed.nmt.evaluation import Translation, Translator
from seqembed.vectors.table import EmbeddingTable

if TYPE_CHECKING:
    from seqembed.nmt.training import TrainResult

SIDES = ("src", "tgt", "out")


@dataclass(frozen=True)
class Tables:
    """A run's embedding tables: ``src`` (encoder input), ``tgt`` (decoder
    input) and ``out`` (the output projection's rows, one per target word;
    None in a checkpoint that lacks it)."""

    src: EmbeddingTable
    tgt: EmbeddingTable
    out: EmbeddingTable | None = None

    def __getitem__(self, side: str) -> EmbeddingTable:
        table = getattr(self, side, None) if side in SIDES else None
        if table is None:
            raise KeyError(f"no {side!r} table (sides: src, tgt, out)")
        return table

    def as_dict(self) -> dict[str, EmbeddingTable]:
        """``{"src": ..., "tgt": ..., "out": ...}``, the sides there are."""
        tables = {side: getattr(self, side) for side in SIDES}
        return {side: table for side, table in tables.items() if table is not None}

    @classmethod
    def of(cls, tables: dict[str, EmbeddingTable], specials: bool) -> Tables:
        """From ``load_tables``: every word (``specials``: and the special
        tokens <PAD> <SOS> <EOS> <UNK>), in vocabulary order."""
        chosen = {
            side: table if specials else table.words(0)
            for side, table in tables.items()
        }
        return cls(chosen["src"], chosen["tgt"], chosen.get("out"))


class Run:
    """A trained model with its vocabularies, text processing and tables.

    ``src``, ``tgt``, ``out``: the trained tables (special tokens left out;
    ``tables(specials=True)`` has them); ``initial``: the same tables before
    training (None if the checkpoint predates them); ``config``: the run's
    resolved ``Config``; ``path``: the run folder; ``checkpoint``: the file
    it loaded; ``checkpoint_line``: that file and how far its model had
    trained, as every command's output names it at its top.
    """

    def __init__(self, checkpoint: Path, state: dict, translator: Translator):
        self.checkpoint = checkpoint
        self.checkpoint_line = describe_checkpoint(checkpoint, state)
        self.path = checkpoint.parent
        self.translator = translator
        self.config: Config = translator.config
        self._trained = load_tables(state)
        self._initial = load_tables(state, initial=True)
        self.counters: dict = dict(state.get("counters", {}))
        # Set by ``train``: why training stopped, epochs done, best metric.
        self.training: TrainResult | None = None
        tables = Tables.of(self._trained, specials=False)
        self.src, self.tgt, self.out = tables.src, tables.tgt, tables.out
        self.initial = (
            Tables.of(self._initial, specials=False)
            if {"src", "tgt"} <= set(self._initial)
            else None
        )

    def __repr__(self) -> str:
        return (
            f"<seqembed.Run {self.checkpoint}: src {len(self.src):,} words, "
            f"tgt {len(self.tgt):,} words, {self.config.model.emb_size}-dim, "
            f"attention {self.config.model.attention}>"
        )

    def tables(self, specials: bool = False, initial: bool = False) -> Tables:
        """The trained (or ``initial``) tables, with the special tokens if
        ``specials``."""
        chosen = self._initial if initial else self._trained
        if initial and not chosen:
            raise InputError(
                "this checkpoint has no initial embeddings", self.checkpoint
            )
        return Tables.of(chosen, specials)

    @overload
    def translate(
        self, text: str, beam: int | None = ..., batch_size: int | None = ...
    ) -> str: ...
    @overload
    def translate(
        self,
        text: Sequence[str],
        beam: int | None = ...,
        batch_size: int | None = ...,
    ) -> list[str]: ...
    def translate(self, text, beam=None, batch_size=None):
        """Raw source text in, detokenised translation out: a ``str`` gives a
        ``str``, a list a list (in order). ``beam``: beam size (default: the
        run's ``decode.beam_size``, greedy unless set)."""
        if not isinstance(text, str):
            text = list(text)
            if not all(isinstance(item, str) for item in text):
                raise TypeError("translate takes a str or a list of str")
        return self.translator.translate(text, beam_size=beam, batch_size=batch_size)

    def translate_detailed(self, text: str, beam: int | None = None) -> Translation:
        """One sentence: the translation, the source and target tokens, the
        source words the vocabulary lacks (translated as <UNK>; no error), the
        model's log-probability of the translation and, for a model with
        attention, the weights of each output step on the source tokens."""
        if not isinstance(text, str):
            raise TypeError("translate_detailed takes one sentence (a str)")
        return self.translator.translate_detailed(text, beam_size=beam)

    def metrics(self) -> list[dict]:
        """The run's ``metrics.jsonl``: one dict per validation, oldest first
        ([] when the folder has none)."""
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def load_run(
    path: str | Path,
    checkpoint: str = "best",
    device: str | None = None,
    progress: ProgressCallback | None = None,
    **decode_settings,
) -> Run:
    """Load a run: a run folder or a checkpoint file. ``checkpoint``: which
    file of a folder, "best" (its ``best.pt``, else ``last.pt``) or "last"
    (its ``last.pt``); a file stands for itself. ``device``: where the
    model translates: "auto" (CUDA, else Apple's MPS, else the CPU), "cpu",
    "cuda", "cuda:N", "mps"; None: the run's ``decode.device``. A device
    this machine lacks is an InputError. ``decode_settings`` override the
    run's ``decode`` section (e.g. ``precision="bf16"``, ``beam_size=5``).
    Loading refuses checkpoints that would run code."""
    file = resolve_checkpoint(Path(path), checkpoint)
    report(progress, Progress("load", 0, 1, f"reading {file}"))
    state = load_checkpoint(file)
    translator = Translator.from_state(state, device, **_known(decode_settings))
    report(progress, Progress("load", 1, 1, f"loaded {file}"))
    return Run(file, state, translator)


def _known(decode_settings: dict) -> dict:
    """The decode settings, checked as a config file's ``decode`` section."""
    from seqembed.config import from_dict

    from_dict({"decode": decode_settings}, "load_run")
    return decode_settings
