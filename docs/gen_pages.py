"""Generate the configuration and command-line reference pages.

Run by mkdocs-gen-files at every ``mkdocs build``: ``configuration.md`` from
the config dataclasses (``seqembed.config``) and ``cli.md`` from the argparse
parser (``seqembed.cli.main.build_parser``), so neither page can miss a key
or a flag. A config key without a line of meaning below stops the build.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing

import mkdocs_gen_files
import yaml

from seqembed import config as config_module
from seqembed.cli.main import build_parser
from seqembed.configfile import field_range, field_spelling

# One line of meaning per key. The build fails on a key missing here (a new
# setting must be documented) and on a line for a key that no longer exists.
MEANINGS = {
    "data.src_column": "0-based column of the source (Chinese) text in a TSV corpus",
    "data.tgt_column": "0-based column of the target (English) text in a TSV corpus",
    "data.src_segmentation": "how the source is split into tokens: `jieba` (raw "
    "Chinese), `pretokenized` (split on spaces), `char` (one token per "
    "character), `sentencepiece` (jieba's words split into subword pieces)",
    "data.user_dict": "a jieba user dictionary file (`word [freq] [tag]` a "
    "line), stored in the checkpoint",
    "data.tgt_tokenization": "how the target is tokenised: `moses`, "
    "`pretokenized` (split on spaces) or `sentencepiece` (pieces of the raw text)",
    "data.lowercase": "lowercase the target text (BLEU is then case-insensitive)",
    "data.src_sp_type": "SentencePiece algorithm of a subword source side",
    "data.src_sp_vocab_size": "pieces of a subword source side (a soft limit)",
    "data.tgt_sp_type": "SentencePiece algorithm of a subword target side",
    "data.tgt_sp_vocab_size": "pieces of a subword target side (a soft limit)",
    "data.max_tokens": "training pairs with a side longer than this many tokens "
    "are skipped and counted",
    "data.max_chars": "lines longer than this many characters are skipped "
    "before segmentation",
    "data.valid_size": "pairs held out for validation",
    "data.test_size": "pairs held out for the test",
    "data.heldout_fraction": "the most of the corpus each held-out split may take",
    "data.split_seed": "seed of the train/valid/test split",
    "data.cache_min_pairs": "from this many training pairs on, the split is "
    "tokenised once into `RUN/cache/` instead of held as Python lists",
    "data.tokenize_processes": "worker processes that tokenise into the cache",
    "vocab.min_freq": "a word is in the vocabulary if seen this often in training",
    "vocab.max_size": "the most words a vocabulary keeps (specials included)",
    "model.emb_size": "width of the source and target embeddings",
    "model.hidden_size": "LSTM width (per direction: half of it, bidirectional)",
    "model.num_layers": "LSTM layers of the encoder and of the decoder",
    "model.dropout": "dropout on embeddings and between layers",
    "model.bidirectional": "a bidirectional encoder",
    "model.attention": "`luong`, `bahdanau`, or `none` (the design document's "
    "model: the encoder's final state is the only context)",
    "model.luong_score": "Luong's score function: `dot` or `general`",
    "model.input_feed": "Luong input feeding: the previous attentional vector "
    "joins the decoder input",
    "model.init": "`uniform`: every parameter from U(-init_range, init_range); "
    "`pytorch`: each layer's default (N(0, 1) embeddings)",
    "model.init_range": "the bound of `init: uniform`",
    "model.src_embeddings": "pretrained vectors for the source table (word2vec "
    "text or binary, GloVe)",
    "model.tgt_embeddings": "pretrained vectors for the target table",
    "model.embeddings_format": "format of those files; `auto` tells them apart",
    "model.freeze_embeddings": "keep the tables read from a file fixed",
    "model.kernels": "auto: the fast CPU kernels (oneDNN or MKL chosen by one timing "
    "per process; SEQEMBED_ONEDNN=1 or 0 pins it); reference: the plain model, "
    "bitwise repeatable in every process",
    "train.epochs": "the most epochs to train",
    "train.batch_size": "sentence pairs per batch (of the whole job, when distributed)",
    "train.lr": "Adam's learning rate",
    "train.lr_schedule": "`plateau` (decay when validation stalls), `step` "
    "(every `lr_step_epochs`) or `none`",
    "train.lr_decay": "factor of each learning-rate decay",
    "train.lr_patience": "plateau: epochs without improvement before a decay",
    "train.lr_step_epochs": "step: decay every this many epochs",
    "train.min_lr": "the learning rate never decays below this",
    "train.clip_norm": "gradients are clipped to this global norm",
    "train.teacher_forcing": "probability of feeding the gold previous token "
    "(below 1: scheduled sampling)",
    "train.label_smoothing": "label smoothing of the cross-entropy",
    "train.early_stopping_metric": "what early stopping and `best.pt` watch: "
    "validation `bleu` or `loss`",
    "train.patience": "epochs without improvement before stopping (0: never)",
    "train.max_minutes": "wall-clock budget of one invocation (fractions allowed)",
    "train.seed": "seed of initialisation, batch order and dropout",
    "train.threads": "torch threads (0: torch's default)",
    "train.valid_bleu_max": "validation pairs decoded for BLEU each epoch (0: all)",
    "train.embedding_snapshot_every": "a float16 snapshot of the embeddings "
    "every N epochs, for the movement analysis (0: never)",
    "train.keep_last": "checkpoints kept besides `best.pt` (`last.pt`, "
    "`last-1.pt`, ...)",
    "train.checkpoint_every_steps": "also save `last.pt` every N batches (0: "
    "only at epoch ends)",
    "train.max_nonfinite_steps": "this many non-finite steps in a row stop training",
    "train.precision": "`fp32`, `bf16` (bfloat16 autocast; on a CPU it needs "
    "native bf16), `fp16` (CUDA, with a gradient scaler), `auto` or `default` "
    "(fp32 on the CPU and MPS, bf16 on a CUDA GPU, fp16 where it lacks bf16)",
    "train.device": "where to train: `auto` (a CUDA GPU, else MPS, else the "
    "CPU), `cpu`, `cuda`, `cuda:N` or `mps`",
    "train.batch_tokens": "batches of about this many target tokens instead of "
    "`batch_size` sentences (0: sentences)",
    "train.accumulate": "batches whose gradients are summed into one optimiser "
    "step (the effective batch)",
    "train.deterministic": "deterministic algorithms only (bitwise repeatable "
    "on a GPU, slower)",
    "decode.beam_size": "beam size (1: greedy)",
    "decode.length_penalty": "GNMT length penalty alpha of beam search (0: none)",
    "decode.max_len_a": "output length cap: a x source length + b ...",
    "decode.max_len_b": "... + b tokens",
    "decode.batch_size": "sentences decoded per batch",
    "decode.precision": "`fp32`, `bf16`, `fp16`, `auto` or `default`, as for "
    "training",
    "decode.device": "where to decode, as `train.device`",
}


def type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(hint))
    if origin is not None:  # X | None
        return " or ".join(type_name(a) for a in typing.get_args(hint))
    return "null" if hint is type(None) else hint.__name__


def allowed(key: str, hint, spec) -> str:
    """The range declared beside the default (``configfile.ranged``)."""
    if typing.get_origin(hint) is typing.Literal:
        return "one of these"
    if field_spelling(spec):
        return field_spelling(spec)
    declared = field_range(spec)
    rule = str(declared) if declared else ""
    if not rule:
        rule = "true or false" if hint is bool else "any"
    if type(None) in typing.get_args(hint):
        rule += ", or null"
    return rule


def config_page() -> str:
    sections = typing.get_type_hints(config_module.Config)
    keys, rows = [], []
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        rows.append(f"\n## `{section}`\n")
        rows.append("| key | type | default | allowed | meaning |")
        rows.append("|---|---|---|---|---|")
        for field in dataclasses.fields(cls):
            key = f"{section}.{field.name}"
            keys.append(key)
            if key not in MEANINGS:
                raise SystemExit(f"docs/gen_pages.py: no meaning for {key}")
            default = "null" if field.default is None else repr(field.default)
            default = default.replace("True", "true").replace("False", "false")
            rows.append(
                f"| `{key}` | {type_name(hints[field.name])} | `{default}` | "
                f"{allowed(key, hints[field.name], field)} | {MEANINGS[key]} |"
            )
    stale = sorted(set(MEANINGS) - set(keys))
    if stale:
        raise SystemExit(f"docs/gen_pages.py: meanings for unknown keys {stale}")
    head = [
        "# Configuration reference",
        "",
        "Generated from `seqembed.config` at every docs build: every key, its "
        "type, default and allowed values. Give a YAML file with any subset "
        "(`seqembed train --config my.yaml`), override single values with "
        "`--set section.key=value` (repeatable), or in Python with "
        '`seqembed.train(..., **{"section.key": value})`. An unknown key, a '
        "wrong type or a value out of range is a one-line error naming the key "
        "(and, in a file, its line). A run writes its resolved configuration to "
        "`RUN/config.yaml`, and `--resume` keeps it.",
        "",
        "```yaml",
        "# the defaults, as a file",
        yaml.safe_dump(
            config_module.to_dict(config_module.Config()), sort_keys=False
        ).rstrip(),
        "```",
    ]
    return "\n".join(head + rows) + "\n"


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"`{name}`" + (" ..." if action.nargs in ("*", "+") else "")
    value = ""
    if action.nargs != 0:
        value = " " + (action.metavar or action.dest.upper())
        if action.choices:
            value = " " + "\\|".join(map(str, action.choices))
    return ", ".join(f"`{flag}{value}`" for flag in action.option_strings)


def _help(action: argparse.Action) -> str:
    text = (action.help or "").replace("|", "\\|").replace("%%", "%")
    if action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0:
        if "default" not in text:
            text += f" (default {action.default})"
    return text


def cli_page() -> str:
    os.environ["COLUMNS"] = "88"  # usage lines wrapped the same everywhere
    parser = build_parser()
    lines = [
        "# Command-line reference",
        "",
        "Generated from the argparse parser (`seqembed.cli.main.build_parser`) "
        "at every docs build. `seqembed COMMAND --help` prints the same. "
        "A mistake in the input is one line on stderr with exit status 2; "
        "130 means interrupted (Ctrl-C), with the checkpoint saved.",
        "",
        "## Global options",
        "",
        "| option | meaning |",
        "|---|---|",
    ]
    commands = None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands = action
        elif not isinstance(action, argparse._HelpAction):
            lines.append(f"| {_flags(action)} | {_help(action)} |")
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    for name, sub in commands.choices.items():
        lines += ["", f"## `seqembed {name}`", "", helps.get(name) or "", ""]
        lines += ["```text", sub.format_usage().strip(), "```", ""]
        lines += ["| argument | meaning |", "|---|---|"]
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                lines.append(f"| {_flags(action)} | {_help(action)} |")
    return "\n".join(lines) + "\n"


with mkdocs_gen_files.open("configuration.md", "w") as page:
    page.write(config_page())
with mkdocs_gen_files.open("cli.md", "w") as page:
    page.write(cli_page())
