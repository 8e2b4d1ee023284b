"""Typed configuration: frozen dataclasses, each key's default and valid
range in one place.

A run is described by one ``Config``. It is read from YAML (``load_config``),
amended by ``--set section.key=value`` overrides, validated (``from_dict``:
types, each number's declared range, the rules between keys), and written
back into the run directory and the checkpoint as a plain dict. Unknown
sections or keys (with the closest valid name), wrong types and
out-of-range values are one-line errors that name the key. The machinery is
in ``seqembed.configfile``; docs/settings.md lists the ranges and rules.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seqembed.configfile import (
    check_fields,
    check_file,
    coerce,
    parse_override,
    ranged,
    read_yaml,
    spelled,
    unknown_key,
    unknown_section,
    write_yaml,
)
from seqembed.errors import InputError

# The source that marks a config a run saved (its checkpoint, its
# config.yaml): it was checked when the run started and is read with the
# ranges of its time (``validate``).
SAVED = "checkpoint"

# The devices a run may name (seqembed.nmt.devices.resolve_device checks
# that the named one is on this machine).
DEVICE = (r"auto|cpu|cuda|cuda:\d+|mps", "auto, cpu, cuda, cuda:N or mps")

# Seeds go to torch, Python's random and numpy: 32 bits suit all three.
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class DataConfig:
    # Column layout of a TSV corpus, 0-based. Tatoeba's export is
    # English TAB Chinese TAB attribution, so the source (Chinese) is column 1.
    src_column: int = ranged(1, ge=0)
    tgt_column: int = ranged(0, ge=0)
    # "jieba": segment raw Chinese; "pretokenized": split on whitespace as given;
    # "char": one token per character (a fallback for unusual scripts);
    # "sentencepiece": jieba's words split into subword pieces (below).
    src_segmentation: Literal["jieba", "pretokenized", "char", "sentencepiece"] = (
        "jieba"
    )
    # Optional jieba user dictionary ("word [freq] [tag]" per line). Its text is
    # stored in the checkpoint so translation segments exactly as training did.
    user_dict: str | None = None
    # "moses": sacremoses tokenizer/detokenizer; "pretokenized": whitespace;
    # "sentencepiece": subword pieces of the raw (lowercased) text.
    tgt_tokenization: Literal["moses", "pretokenized", "sentencepiece"] = "moses"
    lowercase: bool = True
    # SentencePiece models, trained on the training split when a side above
    # is "sentencepiece" (seqembed.data.subwords): the algorithm, and the number of
    # pieces (a soft limit; the side's vocabulary is these pieces plus the 4
    # specials, and vocab.min_freq / vocab.max_size do not apply to it).
    src_sp_type: Literal["unigram", "bpe"] = "unigram"
    src_sp_vocab_size: int = ranged(8000, gt=0, le=1_000_000)
    tgt_sp_type: Literal["unigram", "bpe"] = "unigram"
    tgt_sp_vocab_size: int = ranged(8000, gt=0, le=1_000_000)
    # Pairs with a side longer than this many tokens are skipped (and counted).
    max_tokens: int = ranged(50, gt=0)
    # Lines longer than this many characters are skipped before segmentation.
    max_chars: int = ranged(1000, gt=0)
    # Held-out sizes in pairs, each capped at heldout_fraction of the corpus
    # (at most half each, so that training keeps some).
    valid_size: int = ranged(1000, ge=0)
    test_size: int = ranged(1000, ge=0)
    heldout_fraction: float = ranged(0.1, ge=0, le=0.5)
    split_seed: int = ranged(1, ge=0, le=SEED_MAX)
    # A training split of at least this many pairs is tokenised once, by
    # tokenize_processes processes, into memory-mapped arrays in RUN/cache
    # (seqembed.data.token_cache) instead of being held as Python lists.
    cache_min_pairs: int = ranged(200_000, ge=1)
    tokenize_processes: int = ranged(2, ge=1, le=256)


@dataclass(frozen=True)
class VocabConfig:
    min_freq: int = ranged(2, gt=0)
    # Counting the 4 special tokens.
    max_size: int = ranged(50_000, gt=0)


@dataclass(frozen=True)
class ModelConfig:
    # Bounds far above any model this trains on a CPU: a mistyped size is an
    # error here, not an allocation failure deep in torch.
    emb_size: int = ranged(256, gt=0, le=65_536)
    hidden_size: int = ranged(512, gt=0, le=65_536)
    num_layers: int = ranged(1, gt=0, le=64)
    dropout: float = ranged(0.3, ge=0, lt=1)
    # A bidirectional encoder has hidden_size // 2 units per direction; the two
    # final states are concatenated, which bridges them to the decoder's size.
    bidirectional: bool = True
    attention: Literal["none", "luong", "bahdanau"] = "luong"
    # Luong's score function: "dot" (h.T m) or "general" (h.T W m).
    luong_score: Literal["dot", "general"] = "general"
    # Luong input feeding: the previous attentional vector joins the decoder
    # input. Better context at the price of a step-by-step decoder in training.
    input_feed: bool = False
    # "pytorch": each layer's own default (nn.Embedding rows from N(0, 1), as in
    # the design document). "uniform": every parameter from U(-init_range,
    # init_range), as OpenNMT-py does; N(0, 1) embeddings saturate the LSTM
    # gates of a 256-dimensional model and slow early training.
    init: Literal["pytorch", "uniform"] = "uniform"
    init_range: float = ranged(0.1, gt=0, le=1)
    # Pretrained vectors for the source / target embedding tables (word2vec
    # text or binary, GloVe; seqembed.nmt.pretrained). Words the file lacks keep
    # their random init. The vectors then live in the model's weights: the
    # paths are kept for the record, and a resumed run never reads them again.
    src_embeddings: str | None = None
    tgt_embeddings: str | None = None
    # "auto" tells the three apart, with or without a word2vec header line.
    embeddings_format: Literal["auto", "word2vec", "glove", "word2vec-binary"] = "auto"
    # Keep the tables read from a file fixed (no gradient) instead of fine-tuning.
    freeze_embeddings: bool = False
    # "auto": the fast CPU kernels (seqembed.nmt.cpu) where they apply.
    # "reference": the plain model (seqembed.nmt.model), slower. Both compute
    # the same function within float rounding. "reference" is bitwise
    # repeatable across processes; "auto" may pick oneDNN or MKL for some
    # products by timing both once per process, so sums can be ordered
    # differently (last-bit differences) between processes on one machine;
    # SEQEMBED_ONEDNN=1 (or 0) pins that choice for every process.
    kernels: Literal["auto", "reference"] = "auto"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = ranged(30, gt=0)
    batch_size: int = ranged(64, gt=0)
    lr: float = ranged(1e-3, gt=0)
    lr_schedule: Literal["plateau", "step", "none"] = "plateau"
    lr_decay: float = ranged(0.5, gt=0, lt=1)
    # plateau: epochs without improvement before decay
    lr_patience: int = ranged(1, ge=0)
    lr_step_epochs: int = ranged(5, gt=0)  # step: decay every this many epochs
    min_lr: float = ranged(1e-5, ge=0)
    clip_norm: float = ranged(5.0, gt=0)
    # Probability of feeding the gold previous token; below 1.0 the decoder
    # sometimes sees its own greedy prediction (scheduled sampling).
    teacher_forcing: float = ranged(1.0, ge=0, le=1)
    label_smoothing: float = ranged(0.0, ge=0, lt=1)
    # Early stopping watches the validation BLEU (or loss) each epoch and
    # stops after `patience` epochs without a better one (0: never). Without
    # validation pairs the training pairs stand in (a warning says so).
    early_stopping_metric: Literal["bleu", "loss"] = "bleu"
    patience: int = ranged(5, ge=0)
    max_minutes: float | None = ranged(None, gt=0)  # None: no budget
    seed: int = ranged(1, ge=0, le=SEED_MAX)
    # torch intra-op threads; 0 keeps torch's default.
    threads: int = ranged(0, ge=0, le=256)
    # Decode at most this many validation pairs per epoch for BLEU (0: all).
    valid_bleu_max: int = ranged(1000, ge=0)
    # Keep a float16 copy of both embedding matrices every N epochs (0: never),
    # so later analysis can see how the vectors moved during training.
    embedding_snapshot_every: int = ranged(1, ge=0)
    # Checkpoints: the newest keep_last are kept (last.pt, last-1.pt, ...)
    # besides best.pt; --resume falls back to an older one if the newest is
    # damaged. Every checkpoint_every_steps batches (0: only at epoch ends)
    # last.pt is also saved mid-epoch, so a crash loses at most that many.
    keep_last: int = ranged(3, gt=0, le=1000)
    checkpoint_every_steps: int = ranged(0, ge=0)
    # A batch whose loss or gradient is not finite is skipped (the model and
    # optimiser stay as they were); this many in a row stop training.
    max_nonfinite_steps: int = ranged(5, gt=0)
    # "bf16": the forward pass under bfloat16 autocast (weights, gradients
    # and Adam's state stay float32). 1.4-1.5x more tokens/s on CPUs with
    # native bf16 (AVX512-BF16, AMX), measured by bench/speed.py. Refused on
    # a CPU without it (about 30x slower there); "auto": bf16 where native,
    # else fp32 (seqembed.nmt.devices). "fp16": float16 autocast with a
    # gradient scaler, CUDA only. "default": fp32 on the CPU (its numbers as
    # they always were) and on MPS, bf16 on a CUDA GPU (fp16 where it has no
    # bf16, with a warning).
    precision: Literal["fp32", "bf16", "fp16", "auto", "default"] = "default"
    # Where to train: "auto" takes a CUDA GPU, else Apple's MPS, else the CPU.
    device: str = spelled("auto", *DEVICE)
    # Batches of about this many target tokens (padding not counted) instead
    # of train.batch_size sentences; 0: sentences. A GPU wants thousands.
    batch_tokens: int = ranged(0, ge=0, le=10_000_000)
    # Gradients of this many batches are summed before one optimiser step:
    # the effective batch is accumulate batches (the loss is the mean over
    # all their target tokens, as one batch of them would give).
    accumulate: int = ranged(1, gt=0, le=4096)
    # torch.use_deterministic_algorithms and cuDNN's deterministic kernels,
    # so a GPU run repeats bitwise; slower (see docs/training.md).
    deterministic: bool = False


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = ranged(1, gt=0, le=1000)
    # GNMT length penalty ((5 + len) / 6) ** alpha; 0 disables it.
    length_penalty: float = ranged(1.0, ge=0, le=10)
    # Output length cap: max_len_a * source_length + max_len_b tokens (at
    # least 1; the bounds keep an untrained model's endless output finite).
    max_len_a: float = ranged(2.0, gt=0, le=100)
    max_len_b: int = ranged(10, ge=0, le=10_000)
    # Sentences per batch; rows that finish leave it, so larger is cheaper.
    batch_size: int = ranged(256, gt=0)
    # "bf16": bfloat16 autocast on the CPU. About 1.6x (greedy) to 1.8x (beam 5)
    # faster on CPUs with native bf16 (AVX512-BF16, AMX); BLEU within 0.4 on
    # Tatoeba. Refused on CPUs without it, hence not the CPU's default;
    # "auto": bf16 where native, else fp32. "fp16" and "default" as in train.
    precision: Literal["fp32", "bf16", "fp16", "auto", "default"] = "default"
    # Where to decode, as train.device.
    device: str = spelled("auto", *DEVICE)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


def to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def sections() -> dict[str, type]:
    """Each section's name and dataclass, in order."""
    return typing.get_type_hints(Config)


def fields() -> dict[str, dataclasses.Field]:
    """Every key as ``section.key``, with its dataclass field (type, default
    and declared range: ``configfile.field_range``)."""
    return {
        f"{name}.{spec.name}": spec
        for name, cls in sections().items()
        for spec in dataclasses.fields(cls)
    }


def from_dict(raw: dict[str, Any], source: str | None = "config") -> Config:
    """Build a validated Config from a nested dict; missing keys take defaults."""
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of sections", source)
    built, known = {}, sections()
    for name, values in raw.items():
        if name not in known:
            raise InputError(unknown_section(name, known), source)
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise InputError(f"section '{name}' must be a mapping", source)
        built[name] = _build_section(known[name], name, values, source)
    config = Config(**built)
    validate(config, source)
    return config


def _build_section(cls: type, section: str, values: dict, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise InputError(unknown_key(section, key, _keys()), source)
        kwargs[key] = coerce(value, hints[key], f"{section}.{key}", source)
    return cls(**kwargs)


def _keys() -> dict[str, list[str]]:
    return {
        name: [spec.name for spec in dataclasses.fields(cls)]
        for name, cls in sections().items()
    }


def validate(
    config: Config, source: str | None = "config", kept: Config | None = None
) -> None:
    """Each key in its declared range, then the rules between keys. A Config
    built in Python (``dataclasses.replace``) is checked by ``train``.

    A config a run saved (``source`` SAVED) was checked when its run started;
    its ranges are not checked again, so that a range narrowed since cannot
    lock an old run out of translation or resume. Nor are the values a
    config keeps from such a one (``kept``)."""
    if source != SAVED:
        for name in sections():
            section = getattr(kept, name) if kept is not None else None
            check_fields(getattr(config, name), name, source, section)
    model, decode = config.model, config.decode
    if model.freeze_embeddings and not (model.src_embeddings or model.tgt_embeddings):
        raise InputError(
            "model.freeze_embeddings needs model.src_embeddings or "
            "model.tgt_embeddings (it freezes the tables read from a file)",
            source,
        )
    if model.bidirectional and model.hidden_size % 2:
        raise InputError(
            "model.hidden_size must be even for a bidirectional encoder", source
        )
    if decode.max_len_b < 1 and decode.max_len_a < 1 and source != SAVED:
        raise InputError(
            "decode.max_len_b must be >= 1 when decode.max_len_a < 1 (a "
            "one-token source would get no output)",
            source,
        )


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: Config | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults (or ``base``) <- YAML file <- ``--set`` overrides (text,
    ``section.key=value``, the value read as YAML) <- ``settings``
    (``{"section.key": value}``, values as given), validated. ``base`` is a
    run's own config (``read_run_config``): the values kept from it are not
    checked against today's ranges again."""
    raw = to_dict(base or Config())
    if path is not None:
        path = Path(path)
        loaded, text = read_yaml(path)
        check_file(loaded, text, path, lambda part: from_dict(part, None))
        for section, values in loaded.items():
            raw[section].update(values or {})
    for text in overrides:
        section, key, value = parse_override(text)
        _set(raw, section, key, value, f"--set {text}: ")
    for dotted, value in (settings or {}).items():
        section, _, key = str(dotted).partition(".")
        _set(raw, section, key, str(value) if isinstance(value, Path) else value)
    source = "--set" if overrides else "settings" if settings else str(path or "config")
    if base is None:
        return from_dict(raw, source)
    config = from_dict(raw, SAVED)  # names and types; the ranges below
    validate(config, source, kept=base)
    return config


def _set(raw: dict, section: str, key: str, value: Any, where: str = "") -> None:
    """``raw[section][key] = value``; an unknown name is refused with the
    closest known one (``did you mean 'train.lr_schedule'?``)."""
    if section not in raw:
        raise InputError(f"{where}{unknown_section(section, raw)}")
    if key not in raw[section]:
        raise InputError(f"{where}{unknown_key(section, key, _keys())}")
    raw[section][key] = value


def read_run_config(path: str | Path) -> Config:
    """A run's own ``config.yaml``, read as its checkpoint's config is: with
    the ranges of the version that started the run."""
    path = Path(path)
    loaded, text = read_yaml(path)
    check_file(loaded, text, path, lambda part: from_dict(part, SAVED))
    return from_dict(loaded, SAVED)


def save_config(config: Config, path: Path) -> None:
    write_yaml(to_dict(config), path)
