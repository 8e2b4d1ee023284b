"""Train a translator from a corpus: a file (or two) or pairs in, a Run out.

::

    run = seqembed.train("cmn-eng.tsv", "runs/zh-en", max_minutes=5)
    run = seqembed.train(("train.zh", "train.en"), "runs/x", epochs=3)
    run = seqembed.train(None, "runs/zh-en", resume=True)   # continue
    run = seqembed.train(pairs, "runs/y", **{"model.attention": "bahdanau"})

Settings are the config keys (``docs/configuration.md``): a YAML file
(``config=``), then keyword overrides written ``section.key``; a misspelled
key or a wrong type is an ``InputError`` that names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seqembed.api.progress import CallbackReporter, ProgressCallback
from seqembed.api.runs import Run, load_run
from seqembed.config import Config, from_dict, load_config, to_dict
from seqembed.errors import InputError

# A corpus: one TSV file; a source file and a line-aligned target file; or
# (source, target) sentence pairs.
Corpus = str | Path | tuple[str | Path, str | Path] | Sequence[tuple[str, str]]


def _check_resume(out: Path, vectors_given: bool) -> None:
    from seqembed.nmt.checkpoint import kept_checkpoints

    if not kept_checkpoints(out):
        raise InputError("nothing to resume: no last.pt in the run directory", out)
    if vectors_given:
        raise InputError(
            "src/tgt embeddings and freeze_embeddings start a run; "
            "a resumed run has its vectors in the checkpoint already"
        )


def _given(flags: dict[str, Any]) -> dict[str, Any]:
    """The keyword settings given (not None), paths as text."""
    return {
        key: str(value) if isinstance(value, Path) else value
        for key, value in flags.items()
        if value is not None
    }


def _new_run_inputs(corpus, out: Path, valid, test, user_dict, resolved: Config):
    """What a new run reads before training: checked vector files (a missing
    file or a wrong width first), the corpus and held-out pairs, the jieba
    dictionary's text; an ``out`` that holds a run is refused."""
    from seqembed.nmt.pretrained import check_files

    check_files(resolved.model)
    if (out / "last.pt").exists():
        raise InputError(
            "already holds a run; use resume=True to continue it or another out folder",
            out,
        )
    pairs, heldout = read_corpus(corpus, valid, test, resolved)
    dictionary = user_dict or resolved.data.user_dict
    if not dictionary:
        return pairs, heldout, None
    from seqembed.data.segment import read_user_dict

    return pairs, heldout, read_user_dict(dictionary)


def train(
    corpus: Corpus | None,
    out: str | Path,
    *,
    config: str | Path | Config | dict | None = None,
    max_minutes: float | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    resume: bool = False,
    user_dict: str | Path | None = None,
    valid: str | Path | None = None,
    test: str | Path | None = None,
    src_embeddings: str | Path | None = None,
    tgt_embeddings: str | Path | None = None,
    freeze_embeddings: bool = False,
    progress: ProgressCallback | None = None,
    stop_requested: Callable[[], bool] | None = None,
    **settings: Any,
) -> Run:
    """Train a model on ``corpus`` into the new folder ``out`` and load it.

    ``corpus``: a TSV (Tatoeba's layout: English TAB Chinese, columns from
    ``data.src_column``/``data.tgt_column``), a ``(source file, target
    file)`` tuple of line-aligned files, or a list of ``(source, target)``
    sentence pairs; None with ``resume``. ``config``: a YAML file, a Config or
    a nested dict. ``settings``: config keys, ``**{"model.attention":
    "luong"}``. ``valid`` and ``test``: held-out TSVs instead of a split.
    ``resume=True`` continues the run in ``out`` with its own settings.
    ``progress`` gets a ``Progress`` per batch and per epoch;
    ``stop_requested`` is asked after each batch (True: save and stop).
    Returns the best checkpoint's Run; ``run.training`` says why it stopped."""
    from seqembed.nmt.training import train as train_loop

    out = Path(out)
    if resume:
        _check_resume(out, bool(src_embeddings or tgt_embeddings or freeze_embeddings))
    flags = {"train.max_minutes": max_minutes, "train.epochs": epochs,
             "train.seed": seed, "model.src_embeddings": src_embeddings,
             "model.tgt_embeddings": tgt_embeddings,
             "model.freeze_embeddings": freeze_embeddings or None}  # fmt: skip
    overrides = _given(flags) | settings
    resolved = resolve_config(config, overrides, out if resume else None)
    pairs = heldout = user_dict_text = None
    if not resume:
        pairs, heldout, user_dict_text = _new_run_inputs(
            corpus, out, valid, test, user_dict, resolved
        )
    result = train_loop(
        resolved,
        out,
        pairs,
        resume=resume,
        user_dict=user_dict_text,
        reporter=CallbackReporter(progress),
        heldout=heldout,
        stop_requested=stop_requested or (lambda: False),
    )
    run = load_run(out)
    run.training = result
    return run


def resolve_config(
    config: str | Path | Config | dict | None,
    overrides: dict[str, Any],
    resume_from: Path | None = None,
) -> Config:
    """Defaults (or a resumed run's ``config.yaml``) <- ``config`` <- the
    ``section.key`` overrides, validated as one config."""
    base = None
    saved = resume_from / "config.yaml" if resume_from else None
    if saved is not None and saved.is_file():
        base = load_config(saved)
    if isinstance(config, Config):
        base, config = config, None
    elif isinstance(config, dict):
        base, config = from_dict(config, "config"), None
    raw = to_dict(load_config(config, base=base))
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section not in raw or key not in raw[section]:
            known = ", ".join(f"{s}.{k}" for s in raw for k in raw[s])
            raise InputError(f"unknown setting {dotted!r} (known: {known})")
        raw[section][key] = str(value) if isinstance(value, Path) else value
    return from_dict(raw, "train() settings" if overrides else "config")


def read_corpus(corpus: Corpus | None, valid, test, config: Config):
    """``(pairs, heldout)`` for the training loop: a file is read as a
    stream when training starts; pairs given in memory are used as given."""
    from seqembed.data.corpus import Corpus as CorpusFile
    from seqembed.data.corpus import Pair, SkipCounts, read_tsv
    from seqembed.textfile import check_file

    data = config.data
    if corpus is None:
        raise InputError("train needs a corpus (or resume=True)")
    if isinstance(corpus, (str, Path)):
        files = (corpus,)
    elif len(corpus) == 2 and all(isinstance(f, (str, Path)) for f in corpus):
        files = tuple(corpus)
    else:
        files = None
    if files is not None:
        paths = tuple(check_file(Path(f)) for f in files)
        pairs = CorpusFile(paths, data.src_column, data.tgt_column, data.max_chars)
    else:
        pairs = [Pair(*_pair(item), line) for line, item in enumerate(corpus, 1)]
        if not pairs:
            raise InputError("no sentence pairs to train on (the list is empty)")
    heldout = None
    if valid or test:
        if not (valid and test):
            raise InputError("valid and test go together")
        heldout = {
            name: read_tsv(Path(path), data.src_column, data.tgt_column, 10**9,
                           SkipCounts())
            for name, path in (("valid", valid), ("test", test))
        }  # fmt: skip
    return pairs, heldout


def _pair(item) -> tuple[str, str]:
    if (
        not isinstance(item, (tuple, list))
        or len(item) != 2
        or not all(isinstance(text, str) for text in item)
    ):
        raise InputError(
            f"a sentence pair must be two strings (source, target), got {item!r:.80}"
        )
    return item[0], item[1]
