"""Typed configuration: frozen dataclasses with defaults in one place.

A run is described by one ``Config``. It is read from YAML (``load_config``),
amended by ``--set section.key=value`` overrides, validated, and written back
into the run directory and the checkpoint as a plain dict. Unknown sections or
keys, wrong types and out-of-range values are errors that name the problem.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.textfile import read_text


@dataclass(frozen=True)
class DataConfig:
    # Column layout of a TSV corpus, 0-based. Tatoeba's export is
    # English TAB Chinese TAB attribution, so the source (Chinese) is column 1.
    src_column: int = 1
    tgt_column: int = 0
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
    src_sp_vocab_size: int = 8000
    tgt_sp_type: Literal["unigram", "bpe"] = "unigram"
    tgt_sp_vocab_size: int = 8000
    # Pairs with a side longer than this many tokens are skipped (and counted).
    max_tokens: int = 50
    # Lines longer than this many characters are skipped before segmentation.
    max_chars: int = 1000
    # Held-out sizes in pairs, each capped at heldout_fraction of the corpus.
    valid_size: int = 1000
    test_size: int = 1000
    heldout_fraction: float = 0.1
    split_seed: int = 1
    # A training split of at least this many pairs is tokenised once, by
    # tokenize_processes processes, into memory-mapped arrays in RUN/cache
    # (seqembed.data.token_cache) instead of being held as Python lists.
    cache_min_pairs: int = 200_000
    tokenize_processes: int = 2


@dataclass(frozen=True)
class VocabConfig:
    min_freq: int = 2
    max_size: int = 50_000


@dataclass(frozen=True)
class ModelConfig:
    emb_size: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    dropout: float = 0.3
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
    init_range: float = 0.1
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
    # differently (last-bit differences) between processes on one machine.
    kernels: Literal["auto", "reference"] = "auto"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: Literal["plateau", "step", "none"] = "plateau"
    lr_decay: float = 0.5
    lr_patience: int = 1  # plateau: epochs without improvement before decay
    lr_step_epochs: int = 5  # step: decay every this many epochs
    min_lr: float = 1e-5
    clip_norm: float = 5.0
    # Probability of feeding the gold previous token; below 1.0 the decoder
    # sometimes sees its own greedy prediction (scheduled sampling).
    teacher_forcing: float = 1.0
    label_smoothing: float = 0.0
    # Early stopping watches the validation BLEU (or loss) each epoch.
    early_stopping_metric: Literal["bleu", "loss"] = "bleu"
    patience: int = 5
    max_minutes: float | None = None
    seed: int = 1
    # torch intra-op threads; 0 keeps torch's default.
    threads: int = 0
    # Decode at most this many validation pairs per epoch for BLEU (0: all).
    valid_bleu_max: int = 1000
    # Keep a float16 copy of both embedding matrices every N epochs (0: never),
    # so later analysis can see how the vectors moved during training.
    embedding_snapshot_every: int = 1
    # Checkpoints: the newest keep_last are kept (last.pt, last-1.pt, ...)
    # besides best.pt; --resume falls back to an older one if the newest is
    # damaged. Every checkpoint_every_steps batches (0: only at epoch ends)
    # last.pt is also saved mid-epoch, so a crash loses at most that many.
    keep_last: int = 3
    checkpoint_every_steps: int = 0
    # A batch whose loss or gradient is not finite is skipped (the model and
    # optimiser stay as they were); this many in a row stop training.
    max_nonfinite_steps: int = 5
    # "bf16": the forward pass under bfloat16 autocast (weights, gradients
    # and Adam's state stay float32). 1.4-1.5x more tokens/s on CPUs with
    # native bf16 (AVX512-BF16, AMX), measured by bench/speed.py. Refused on
    # a CPU without it (about 30x slower there); "auto": bf16 where native,
    # else fp32 (seqembed.nmt.devices).
    precision: Literal["fp32", "bf16", "auto"] = "fp32"


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 1
    # GNMT length penalty ((5 + len) / 6) ** alpha; 0 disables it.
    length_penalty: float = 1.0
    # Output length cap: max_len_a * source_length + max_len_b tokens.
    max_len_a: float = 2.0
    max_len_b: int = 10
    # Sentences per batch; rows that finish leave it, so larger is cheaper.
    batch_size: int = 256
    # "bf16": bfloat16 autocast on the CPU. About 1.6x (greedy) to 1.8x (beam 5)
    # faster on CPUs with native bf16 (AVX512-BF16, AMX); BLEU within 0.4 on
    # Tatoeba. Refused on CPUs without it, hence not the default; "auto":
    # bf16 where native, else fp32.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


# Values that must be positive (> 0) or non-negative (>= 0).
_POSITIVE = {
    "data.max_tokens",
    "data.src_sp_vocab_size",
    "data.tgt_sp_vocab_size",
    "data.max_chars",
    "vocab.min_freq",
    "vocab.max_size",
    "model.emb_size",
    "model.hidden_size",
    "model.num_layers",
    "train.epochs",
    "train.batch_size",
    "train.lr",
    "train.lr_decay",
    "train.lr_step_epochs",
    "train.clip_norm",
    "train.keep_last",
    "train.max_nonfinite_steps",
    "decode.beam_size",
    "model.init_range",
    "decode.batch_size",
    "decode.max_len_a",
}
_NON_NEGATIVE = {
    "data.valid_size",
    "data.test_size",
    "data.heldout_fraction",
    "model.dropout",
    "train.lr_patience",
    "train.min_lr",
    "train.teacher_forcing",
    "train.label_smoothing",
    "train.patience",
    "train.threads",
    "train.valid_bleu_max",
    "train.embedding_snapshot_every",
    "train.checkpoint_every_steps",
    "decode.length_penalty",
    "decode.max_len_b",
}
_AT_MOST_ONE = {
    "model.dropout",
    "train.teacher_forcing",
    "train.label_smoothing",
    "data.heldout_fraction",
    "train.lr_decay",
}


def to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(raw: dict[str, Any], source: str | None = "config") -> Config:
    """Build a validated Config from a nested dict; missing keys take defaults."""
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of sections", source)
    sections = {}
    hints = typing.get_type_hints(Config)
    for name, values in raw.items():
        if name not in hints:
            raise InputError(
                f"unknown section '{name}' (known: {', '.join(hints)})", source
            )
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise InputError(f"section '{name}' must be a mapping", source)
        sections[name] = _build_section(hints[name], name, values, source)
    config = Config(**sections)
    _validate(config, source)
    return config


def _build_section(cls: type, section: str, values: dict, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise InputError(
                f"unknown key '{section}.{key}' (known: {', '.join(hints)})", source
            )
        kwargs[key] = _coerce(value, hints[key], f"{section}.{key}", source)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, source)
            except InputError as error:
                errors.append(str(error))
        raise InputError(errors[-1].split(": ", 1)[-1], source)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            choices = ", ".join(map(str, allowed))
            raise InputError(f"{key} must be one of {choices}, got {value!r}", source)
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    type_name = getattr(hint, "__name__", str(hint))
    raise InputError(f"{key} must be {type_name}, got {value!r}", source)


def _validate(config: Config, source: str) -> None:
    flat = {
        f"{section}.{key}": value
        for section, values in to_dict(config).items()
        for key, value in values.items()
    }
    for key, value in flat.items():
        if value is None:
            continue
        if key in _POSITIVE and value <= 0:
            raise InputError(f"{key} must be > 0, got {value}", source)
        if key in _NON_NEGATIVE and value < 0:
            raise InputError(f"{key} must be >= 0, got {value}", source)
        if key in _AT_MOST_ONE and value > 1:
            raise InputError(f"{key} must be <= 1, got {value}", source)
    if flat["train.max_minutes"] is not None and flat["train.max_minutes"] <= 0:
        raise InputError("train.max_minutes must be > 0", source)
    model = config.model
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


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value``; the value is read as YAML (1e-3, true, null)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise InputError(f"--set expects section.key=value, got {text!r}")
    dotted, raw_value = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return section, key, value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] = (),
    base: Config | None = None,
) -> Config:
    """Defaults (or ``base``) <- YAML file <- ``--set`` overrides, validated."""
    raw = to_dict(base or Config())
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise InputError("config file not found", path)
        text = read_text(path)
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise InputError(
                f"invalid YAML: {error}".splitlines()[0], path, line
            ) from None
        if not isinstance(loaded, dict):
            raise InputError("expected a mapping of sections", path)
        _check_file(loaded, text, path)
        for section, values in loaded.items():
            raw[section].update(values or {})
    for text in overrides:
        section, key, value = parse_override(text)
        if section not in raw:
            raise InputError(f"--set {text}: unknown section '{section}'")
        if key not in raw[section]:
            known = ", ".join(raw[section])
            raise InputError(f"--set {text}: unknown key '{section}.{key}' ({known})")
        raw[section][key] = value
    return from_dict(raw, "--set" if overrides else str(path or "config"))


def _check_file(loaded: dict, text: str, path: Path) -> None:
    """Unknown keys, types and ranges of a config file, named by file and,
    where one key alone is wrong, by that key's line."""
    try:
        from_dict(loaded, None)
    except InputError as error:
        lines = _key_lines(text)
        for section, values in loaded.items():
            keys = [None] + list(values if isinstance(values, dict) else {})
            for key in keys:
                one = {section: values if key is None else {key: values[key]}}
                if key is None and isinstance(values, dict):
                    one = {section: {}}  # the section's own name
                try:
                    from_dict(one, None)
                except InputError as alone:
                    if str(alone) == str(error):
                        line = lines.get((section, key))
                        raise InputError(str(error), path, line) from None
        raise InputError(str(error), path) from None


def _key_lines(text: str) -> dict[tuple, int]:
    """{(section, key): line} and {(section, None): line} of a YAML mapping."""
    root = yaml.compose(text)
    lines = {}
    if isinstance(root, yaml.MappingNode):
        for section, values in root.value:
            lines[(section.value, None)] = section.start_mark.line + 1
            if isinstance(values, yaml.MappingNode):
                for key, _ in values.value:
                    lines[(section.value, key.value)] = key.start_mark.line + 1
    return lines


def save_config(config: Config, path: Path) -> None:
    text = yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)
    atomic_write(Path(path), lambda out: out.write(text.encode("utf-8")))
