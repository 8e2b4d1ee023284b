"""Setting up a training run (``start_session``): the settings, the data,
the vocabularies, the model and the optimiser; on resume, all of them as the
checkpoint left them. ``Session`` holds what the loop works with.

Distributed, rank 0 splits the corpus into ``RUN/data``, trains the subword
models and builds the token cache while the other ranks wait; then every
rank reads the files there (one folder that all machines share, as resuming
from its checkpoint does). Only rank 0 writes to ``run_dir``.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from seqembed.config import SAVED, Config, from_dict, save_config, to_dict, validate
from seqembed.data.corpus import SIDES, Corpus, Pair, SkipCounts
from seqembed.data.prepare import (
    Split,
    build_vocabs,
    count_lines,
    read_splits,
    split_corpus,
    tokenize_splits,
    train_subwords,
)
from seqembed.data.segment import read_user_dict, text_processing
from seqembed.data.subwords import SubwordModel, from_state, to_state
from seqembed.data.token_cache import TokenArrays, build_cache, open_cache
from seqembed.data.vocab import Vocab
from seqembed.errors import InputError
from seqembed.nmt import distributed
from seqembed.nmt.build import build_model
from seqembed.nmt.counters import Counters
from seqembed.nmt.cpu import allocator
from seqembed.nmt.devices import (
    describe_device,
    resolve_device,
    resolve_precision,
)
from seqembed.nmt.memory import check_memory
from seqembed.nmt.model import Seq2Seq
from seqembed.nmt.pretrained import apply_pretrained
from seqembed.nmt.resume import load_for_resume, resume_config, resume_user_dict
from seqembed.nmt.rng import restore_rng, rng_state, seed_rank
from seqembed.nmt.steps import make_scheduler

log = logging.getLogger(__name__)


@dataclass
class Session:
    """Everything the loop works with, built by ``start_session``."""

    config: Config
    run_dir: Path
    user_dict: str | None  # the jieba user dictionary's text
    subwords: dict[str, SubwordModel]  # the SentencePiece sides' models
    src_vocab: Vocab
    tgt_vocab: Vocab
    train_src: TokenArrays  # memory-mapped from RUN/cache for a large corpus
    train_tgt: TokenArrays
    valid: Split  # raw pairs and tokens, for BLEU
    valid_src: list[list[int]]
    valid_tgt: list[list[int]]
    model: Seq2Seq
    initial_embeddings: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: object
    counters: Counters
    last_saved: str | None = None  # "last.pt (epoch 3, batch 40)", for messages
    device: torch.device = torch.device("cpu")  # the model's and the batches'
    scaler: torch.amp.GradScaler | None = None  # fp16 on a GPU only

    def checkpoint_state(self, elapsed_s: float) -> dict:
        """Every rank calls it (it gathers the RNG states); rank 0 saves it."""
        scheduler = self.scheduler
        every_rank = distributed.gather_to_main(rng_state())
        state = {
            "config": to_dict(self.config),
            "src_vocab": self.src_vocab.to_dict(),
            "tgt_vocab": self.tgt_vocab.to_dict(),
            "user_dict": self.user_dict,
            "subword_models": to_state(self.subwords),
            "model": self.model.state_dict(),
            "initial_embeddings": self.initial_embeddings,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "counters": dataclasses.asdict(replace(self.counters, elapsed_s=elapsed_s)),
            "rng": rng_state(),
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if distributed.world_size() > 1:  # each rank's, for a bitwise resume
            state["rng_ranks"] = every_rank
        return state


def start_session(
    config: Config,
    run_dir: Path,
    pairs: list[Pair] | Corpus | None,
    resume: bool,
    user_dict: str | None,
    heldout: dict[str, list[Pair]] | None = None,
    device: torch.device | None = None,
) -> Session:
    """Split and tokenise the data, build vocabularies, model and optimiser;
    with ``resume``, restore all of them from ``run_dir``'s newest checkpoint.
    ``user_dict`` is the dictionary's text; None reads ``data.user_dict``.
    ``device``: where to train (None: ``train.device`` resolved here)."""
    if device is None:
        device = resolve_device(config.train.device, "train.device")
    checkpoint, path = load_for_resume(run_dir) if resume else (None, None)
    config, user_dict = _settings(config, user_dict, checkpoint, run_dir, device)
    if checkpoint is None:
        # from_main: the other ranks wait until the files are written
        distributed.from_main(lambda: split_corpus(pairs, config, run_dir, heldout))
    if distributed.is_main():
        save_config(config, run_dir / "config.yaml")
    log.info("device %s", describe_device(device))  # after the corpus's errors
    _process_settings(config, device)
    subwords = _subword_models(config, user_dict, run_dir, checkpoint)
    data = _training_data(config, run_dir, user_dict, subwords, checkpoint)
    stand_in = data.pop("train_as_valid")
    vocabs = data["src_vocab"], data["tgt_vocab"]
    model = _model(config, *vocabs, run_dir, checkpoint, device)
    # fused: one kernel per parameter instead of ~10 elementwise passes;
    # 8% more training tokens/s on the CPU (bench/speed.py). On a GPU it
    # also skips a non-finite step on the device (steps.device_step).
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, fused=True)
    session = Session(
        config=config,
        run_dir=run_dir,
        user_dict=user_dict,
        subwords=subwords,
        **data,
        model=model,
        initial_embeddings={  # on the CPU: the analysis reads them there
            kind: weight.detach().to("cpu", copy=True)
            for kind, weight in model.embedding_tables().items()
        },
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, config),
        counters=Counters(),
        device=device,
        scaler=_scaler(config),
    )
    if checkpoint is not None:
        _restore(session, checkpoint, path)
    if stand_in:
        _without_validation(config, len(session.valid.pairs))
    log.info(
        "model: %d parameters; vocab src %d, tgt %d; train %d pairs",
        sum(p.numel() for p in model.parameters()), len(session.src_vocab),
        len(session.tgt_vocab), len(session.train_src),
    )  # fmt: skip
    return session


def _scaler(config: Config) -> torch.amp.GradScaler | None:
    """fp16's gradient scaler (fp16 gradients underflow unscaled; bf16 has
    fp32's range and needs none)."""
    if config.train.precision != "fp16":
        return None
    return torch.amp.GradScaler("cuda")


def _process_settings(config: Config, device: torch.device) -> None:
    """The seeds, threads and (on the CPU) the allocator: settings of this
    process, made before the model is built (``train.deterministic``:
    ``train`` sets it while it runs)."""
    torch.manual_seed(config.train.seed)
    random.seed(config.train.seed)
    if config.train.threads > 0:
        torch.set_num_threads(config.train.threads)
    if device.type == "cpu":
        allocator.keep_freed_memory()


def _settings(
    config: Config,
    user_dict: str | None,
    checkpoint: dict | None,
    run_dir: Path,
    device: torch.device,
) -> tuple[Config, str | None]:
    """The config and user dictionary the run trains with: a resumed run's
    own (``resume_config``: the one rule), else as given, the dictionary
    read from ``data.user_dict`` unless its text was given; the precision
    resolved for this CPU. A Config built in Python (``dataclasses.replace``)
    is checked here, where ``from_dict`` has not."""
    if checkpoint is not None:
        saved = from_dict(checkpoint["config"], SAVED)
        config = resume_config(saved, config, run_dir)
        user_dict = resume_user_dict(checkpoint, user_dict, run_dir)
    else:
        validate(config)
        if user_dict is None and config.data.user_dict:
            user_dict = read_user_dict(config.data.user_dict)
    precision = resolve_precision(config.train.precision, "train.precision", device)
    # Decoding's device and precision serve only at the end (the test split):
    # checked now, so that a run never trains only to fail there.
    decode_device = resolve_device(config.decode.device, "decode.device")
    resolve_precision(config.decode.precision, "decode.precision", decode_device)
    return replace(config, train=replace(config.train, precision=precision)), user_dict


def _subword_models(
    config: Config, user_dict: str | None, run_dir: Path, checkpoint: dict | None
) -> dict[str, SubwordModel]:
    """A resumed run's own; else rank 0 trains them (and writes them to
    ``run_dir``) and every rank uses them."""
    if checkpoint is not None:
        return from_state(checkpoint)
    trained = distributed.from_main(
        lambda: to_state(train_subwords(config, user_dict, run_dir))
    )
    return from_state({"subword_models": trained})


def _training_data(
    config: Config,
    run_dir: Path,
    user_dict: str | None,
    subwords: dict[str, SubwordModel],
    checkpoint: dict | None,
) -> dict:
    """The vocabularies, the training pairs' ids (from ``RUN/cache`` for a
    large split) and the validation pairs: ``Session``'s fields of them."""
    cache_train = count_lines(run_dir / "data" / "train.tsv") >= (
        config.data.cache_min_pairs
    )
    # A training split for the cache is read from its file by the cache's
    # workers, and never held here; valid and test are small (data.valid_size).
    splits = read_splits(run_dir, ("valid", "test") if cache_train else SIDES)
    splits.setdefault("train", [])
    segmenter, tokenizer = text_processing(config.data, user_dict, subwords)
    vocabs = None
    if checkpoint is not None:
        vocabs = (
            Vocab.from_dict(checkpoint["src_vocab"]),
            Vocab.from_dict(checkpoint["tgt_vocab"]),
        )
    cached = None
    if cache_train:
        cached = _token_cache(config, run_dir, user_dict, subwords, vocabs)
    skips = SkipCounts()
    data = tokenize_splits(splits, config, segmenter, tokenizer, skips)
    if skips.total:
        log.warning("%s", skips.summary())
    if vocabs is None:
        vocabs = cached["vocabs"] if cached else None
    src_vocab, tgt_vocab = vocabs or build_vocabs(config, data["train"], subwords)
    if cached is not None:
        train_src, train_tgt = cached["src"], cached["tgt"]
    else:
        train_src = TokenArrays.from_lists(
            [src_vocab.encode(s) for s in data["train"].src]
        )
        train_tgt = TokenArrays.from_lists(
            [tgt_vocab.encode(t) for t in data["train"].tgt]
        )
    if distributed.is_main():
        src_vocab.save(run_dir / "vocab.src.tsv")
        tgt_vocab.save(run_dir / "vocab.tgt.tsv")
    valid = data["valid"] if data["valid"].pairs else _train_as_valid(config, data)
    return dict(
        train_as_valid=valid is data["train"],
        src_vocab=src_vocab,
        tgt_vocab=tgt_vocab,
        train_src=train_src,
        train_tgt=train_tgt,
        valid=valid,
        valid_src=[src_vocab.encode(s) for s in valid.src],
        valid_tgt=[tgt_vocab.encode(t) for t in valid.tgt],
    )


def _train_as_valid(config: Config, data: dict[str, Split]) -> Split:
    """With no validation pairs (a toy corpus), the training pairs stand in
    for them; a training split on the token cache is not held to do so."""
    if not data["train"].pairs:
        raise InputError(
            f"no validation pairs ({_held_out(config)}), which a training split "
            f"on the token cache (data.cache_min_pairs="
            f"{config.data.cache_min_pairs}) needs: raise data.valid_size or "
            "give held-out pairs"
        )
    return data["train"]


def _without_validation(config: Config, n_pairs: int) -> None:
    """Say that the training pairs stand in for validation pairs: a warning
    where early stopping watches them (said once the model is built, after
    any error that would stop the run)."""
    train_cfg = config.train
    if train_cfg.patience > 0:
        log.warning(
            "no validation pairs (%s): early stopping (train.patience=%d) and "
            "best.pt follow the %s on the %d training pairs instead",
            _held_out(config), train_cfg.patience,
            train_cfg.early_stopping_metric, n_pairs,
        )  # fmt: skip
    else:
        log.info(
            "no validation pairs (%s): validation and best.pt use the %d "
            "training pairs", _held_out(config), n_pairs,
        )  # fmt: skip


def _held_out(config: Config) -> str:
    data = config.data
    return (
        f"data.valid_size={data.valid_size}, "
        f"data.heldout_fraction={data.heldout_fraction:g}"
    )


def _model(
    config: Config,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    run_dir: Path,
    checkpoint: dict | None,
    device: torch.device,
) -> Seq2Seq:
    """The model on ``device``, its tables from pretrained vectors where
    asked; on resume the checkpoint holds them and only freezing is set again."""
    if device.type == "cpu":  # host memory; a GPU reports its own lack
        check_memory(config, len(src_vocab), len(tgt_vocab))
    model = build_model(config.model, len(src_vocab), len(tgt_vocab), device)
    resume = checkpoint is not None
    apply_pretrained(model, src_vocab, tgt_vocab, config, run_dir, resume=resume)
    if distributed.rank() > 0:  # the same initial model, its own dropout masks
        seed_rank(config.train.seed, distributed.rank())
    return model


def _restore(session: Session, checkpoint: dict, path: Path) -> None:
    """Model, optimiser, schedule, counters and random states as saved."""
    session.model.load_state_dict(checkpoint["model"])
    session.initial_embeddings = checkpoint["initial_embeddings"]
    session.optimizer.load_state_dict(checkpoint["optimizer"])
    if session.scheduler is not None and checkpoint.get("scheduler"):
        session.scheduler.load_state_dict(checkpoint["scheduler"])
    if session.scaler is not None and checkpoint.get("scaler"):
        session.scaler.load_state_dict(checkpoint["scaler"])
    counters = session.counters = Counters.from_dict(checkpoint["counters"])
    restore_rng(checkpoint)
    session.last_saved = (
        f"{path.name} (epoch {counters.epoch}, batch {counters.position})"
    )
    log.info("resuming at epoch %d, batch %d", counters.epoch, counters.position)


def _token_cache(config, run_dir, user_dict, subwords, vocabs) -> dict:
    """The training split's token ids in ``RUN/cache`` (``token_cache``):
    rank 0 tokenises ``RUN/data/train.tsv`` unless a resumed run's cache is
    there; every rank then memory-maps the arrays."""
    cache_dir = run_dir / "cache"

    def build() -> dict:
        if vocabs is not None and open_cache(cache_dir) is not None:
            return {"vocabs": None, "skips": None}  # resume: the run's own cache
        cache = build_cache(
            run_dir / "data" / "train.tsv",
            cache_dir,
            config,
            user_dict,
            subwords,
            config.data.tokenize_processes,
            vocabs,
        )
        if cache.skips.total:
            log.warning("training split: %s", cache.skips.summary())
        built = cache.src_vocab is not None
        return {"vocabs": (cache.src_vocab, cache.tgt_vocab) if built else None}

    result = distributed.from_main(build)
    cache = open_cache(cache_dir)
    return {"vocabs": result["vocabs"], "src": cache.src, "tgt": cache.tgt}
