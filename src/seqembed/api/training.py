"""Train a translator from a corpus: a file (or two) or pairs in, a Run out.

::

    run = seqembed.train("cmn-eng.tsv", "runs/zh-en", max_minutes=5)
    run = seqembed.train(("train.zh", "train.en"), "runs/x", epochs=3)
    run = seqembed.train(None, "runs/zh-en", resume=True)   # continue
    run = seqembed.train(pairs, "runs/y", **{"model.attention": "bahdanau"})

Settings are the config keys (``docs/configuration.md``): a YAML file
(``config=``), then ``--set``-style texts (``overrides=["train.lr=3e-4"]``),
then keyword settings written ``section.key``; a misspelled key (with the
closest known one) or a wrong type is an ``InputError`` that names it. The
command line's ``seqembed train`` is a layer over ``train``: the same checks,
the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from seqembed.api.progress import CallbackReporter, ProgressCallback
from seqembed.api.runs import Run, load_run
from seqembed.config import Config, from_dict, load_config, read_run_config
from seqembed.errors import InputError

# A corpus: one TSV file; a source file and a line-aligned target file; or
# (source, target) sentence pairs.
Corpus = str | Path | tuple[str | Path, str | Path] | Sequence[tuple[str, str]]


def train(
    corpus: Corpus | None,
    out: str | Path,
    *,
    config: str | Path | Config | dict | None = None,
    overrides: Sequence[str] = (),
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
    a nested dict. ``overrides``: ``"section.key=value"`` texts, the value
    read as YAML (the CLI's ``--set``). ``settings``: config keys,
    ``**{"model.attention": "luong"}``; they and the named arguments
    (``epochs`` is ``train.epochs``, ``user_dict`` ``data.user_dict``, ...)
    come last. ``valid`` and ``test``: held-out TSVs instead of a split.
    ``resume=True`` continues the run in ``out`` with its own settings.
    ``progress`` gets a ``Progress`` per batch and per epoch;
    ``stop_requested`` is asked after each batch (True: save and stop).
    Returns the best checkpoint's Run; ``run.training`` says why it stopped."""
    from seqembed.nmt.training import train as train_loop

    out = Path(out)
    if resume:
        _check_resume(out, bool(src_embeddings or tgt_embeddings or freeze_embeddings))
    named = named_settings(max_minutes=max_minutes, epochs=epochs, seed=seed,
                           user_dict=user_dict, src_embeddings=src_embeddings,
                           tgt_embeddings=tgt_embeddings,
                           freeze_embeddings=freeze_embeddings)  # fmt: skip
    resolved = resolve_config(
        config, overrides, named | settings, resume_from=out if resume else None
    )
    pairs = heldout = user_dict_text = None
    if not resume:
        read = new_run_inputs(corpus, out, valid, test, resolved)
        pairs, heldout, user_dict_text = read
    result = train_loop(resolved, out, pairs, resume=resume, user_dict=user_dict_text,
                        reporter=CallbackReporter(progress), heldout=heldout,
                        stop_requested=stop_requested or (lambda: False))  # fmt: skip
    run = load_run(out)
    run.training = result
    return run


def named_settings(
    max_minutes: float | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    user_dict: str | Path | None = None,
    src_embeddings: str | Path | None = None,
    tgt_embeddings: str | Path | None = None,
    freeze_embeddings: bool = False,
) -> dict[str, Any]:
    """``train``'s named arguments as the config keys they set (those given)."""
    keys = {"train.max_minutes": max_minutes, "train.epochs": epochs,
            "train.seed": seed, "data.user_dict": user_dict,
            "model.src_embeddings": src_embeddings,
            "model.tgt_embeddings": tgt_embeddings,
            "model.freeze_embeddings": freeze_embeddings or None}  # fmt: skip
    return {key: value for key, value in keys.items() if value is not None}


def resolve_config(
    config: str | Path | Config | dict | None,
    overrides: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
    resume_from: Path | None = None,
) -> Config:
    """Defaults (or the ``config.yaml`` of the run ``resume_from`` resumes,
    read as its checkpoint's config is) <- ``config`` <- the ``overrides``
    texts <- the ``section.key`` ``settings``, validated as one config. An
    unknown key is refused with the closest known one."""
    base, path = None, None
    saved = Path(resume_from) / "config.yaml" if resume_from else None
    if saved is not None and saved.is_file():
        base = read_run_config(saved)
    if isinstance(config, Config):
        base = config
    elif isinstance(config, dict):
        base = from_dict(config, "config")
    else:
        path = config
    return load_config(path, list(overrides), base=base, settings=settings)


def _check_resume(out: Path, vectors_given: bool) -> None:
    from seqembed.nmt.checkpoint import kept_checkpoints

    if not kept_checkpoints(out):
        raise InputError("nothing to resume: no last.pt in the run directory", out)
    if vectors_given:
        raise InputError(
            "src/tgt embeddings and freeze_embeddings (--src/--tgt-embeddings, "
            "--freeze-embeddings) start a run; a resumed run has its vectors in "
            "the checkpoint already"
        )


def refuse_a_used_out(out: Path) -> None:
    """A new run goes into a folder that holds none: no ``last.pt``, nor a
    ``seed-N`` run of ``seqembed train --seeds``."""
    if (out / "last.pt").exists() or any(out.glob("seed-*/last.pt")):
        raise InputError(
            "already holds a run; resume it (resume=True, --resume) or train "
            "into another folder",
            out,
        )


def new_run_inputs(corpus, out: Path, valid, test, resolved: Config):
    """What a new run reads before training: checked vector files (a missing
    file or a wrong width first), the corpus and held-out pairs, the jieba
    dictionary's text (``data.user_dict``); an ``out`` that holds a run is
    refused."""
    from seqembed.nmt.pretrained import check_files

    check_files(resolved.model)
    if corpus is None:
        raise InputError("train needs a corpus, or resume to continue a run")
    refuse_a_used_out(out)
    pairs, heldout = read_corpus(corpus, valid, test, resolved)
    if not resolved.data.user_dict:
        return pairs, heldout, None
    from seqembed.data.segment import read_user_dict

    return pairs, heldout, read_user_dict(resolved.data.user_dict)


def read_corpus(corpus: Corpus, valid, test, config: Config):
    """``(pairs, heldout)`` for the training loop: a file is read as a
    stream when training starts (twice: to split, to write the splits),
    never as a list, for a corpus may be millions of pairs; pairs given in
    memory are used as given."""
    from seqembed.data.corpus import Corpus as CorpusFile
    from seqembed.data.corpus import Pair, SkipCounts, read_tsv
    from seqembed.textfile import check_file

    data = config.data
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
