"""seqembed: LSTM encoder-decoder translation and a look inside its embeddings.

::

    import seqembed
    run = seqembed.load_run("runs/demo")
    run.translate("今天天气很好")
    run.src.most_similar("天气", topn=5, chance=True)
    result = seqembed.analyze(run, groups="builtin")
    new = seqembed.train("corpus.tsv", "runs/new", max_minutes=5)

The names below are loaded when first used (PEP 562), so ``import seqembed``
does not import torch: the command line chooses the OpenMP wait policy
before torch loads, and ``seqembed --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "load_run": "seqembed.api.runs",
    "Run": "seqembed.api.runs",
    "Tables": "seqembed.api.runs",
    "Translation": "seqembed.nmt.evaluation",
    "Translator": "seqembed.nmt.evaluation",
    "builtin_corpus": "seqembed.api.data",
    "builtin_user_dict": "seqembed.api.data",
    "train": "seqembed.api.training",
    "analyze": "seqembed.api.analysis",
    "AnalysisResult": "seqembed.api.analysis",
    "Finding": "seqembed.api.analysis",
    "plot_map": "seqembed.api.plots",
    "Progress": "seqembed.api.progress",
    "EmbeddingTable": "seqembed.vectors.table",
    "WordPairEvaluation": "seqembed.vectors.table",
    "Config": "seqembed.config",
    "InputError": "seqembed.errors",
    "UnknownWordError": "seqembed.errors",
}

# Spelled out (not built from _EXPORTS) so linters and editors read it.
__all__ = [
    "__version__",
    "load_run",
    "Run",
    "Tables",
    "Translation",
    "Translator",
    "builtin_corpus",
    "builtin_user_dict",
    "train",
    "analyze",
    "AnalysisResult",
    "Finding",
    "plot_map",
    "Progress",
    "EmbeddingTable",
    "WordPairEvaluation",
    "Config",
    "InputError",
    "UnknownWordError",
]

if TYPE_CHECKING:  # for type checkers and editors; nothing is imported at run time
    from seqembed.api.analysis import AnalysisResult, Finding, analyze
    from seqembed.api.data import builtin_corpus, builtin_user_dict
    from seqembed.api.plots import plot_map
    from seqembed.api.progress import Progress
    from seqembed.api.runs import Run, Tables, load_run
    from seqembed.api.training import train
    from seqembed.config import Config
    from seqembed.errors import InputError, UnknownWordError
    from seqembed.nmt.evaluation import Translation, Translator
    from seqembed.vectors.table import EmbeddingTable, WordPairEvaluation


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seqembed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
