"""The report's words about the run: which checkpoint it shows, what was
trained on what, and how well it translates held-out text.

Sentences, not placeholders: plural forms are right ("1 layer", "2
layers"), and what does not apply is left out. A BLEU or chrF on fewer than
``evaluation.CI_BELOW`` sentences carries its 95% confidence interval.
"""

from __future__ import annotations

from pathlib import Path

from seqembed.analysis.wording import plural
from seqembed.data.vocab import SPECIALS
from seqembed.nmt.evaluation import score
from seqembed.report.curve import overfitting_sentence

ATTENTION_NAMES = {"none": "no attention", "bahdanau": "Bahdanau attention"}
METRIC_NAMES = {"bleu": "validation BLEU", "loss": "validation loss"}


def checkpoint_line(checkpoint: Path, state: dict, metrics: list[dict]) -> str:
    """Which model the page shows, and why that one: ``best.pt: the model
    after epoch 7 of 12, kept for its best validation BLEU ...``."""
    counters = state.get("counters", {})
    epoch = int(counters.get("epoch", 1)) - 1
    total = max([int(m["epoch"]) for m in metrics] + [epoch])
    watched = METRIC_NAMES.get(
        state["config"].get("train", {}).get("early_stopping_metric", "bleu"),
        "validation score",
    )
    after = f"the model after epoch {epoch} of {total}" if epoch else "the model"
    if checkpoint.name == "best.pt":
        why = f", kept for its best {watched}"
    elif checkpoint.name == "last.pt":
        why = ", the last one saved"
    else:
        why = ""
    return (
        f"Checkpoint {checkpoint.name}: {after}{why}. Every seqembed command reads "
        "a run's best.pt (or its last.pt when there is no best.pt) unless told "
        "--checkpoint last."
    )


def summary_rows(state: dict, config, splits: dict, metrics: list[dict]) -> list:
    model, data = config.model, config.data
    encoder = "bidirectional" if model.bidirectional else "unidirectional"
    attention = ATTENTION_NAMES.get(
        model.attention, f"Luong ({model.luong_score}) attention"
    )
    n_params = sum(t.numel() for t in state["model"].values())
    counts = [
        plural(len(splits[name]), f"{name} pair")
        for name in ("train", "valid", "test")
        if splits[name]
    ]
    rows = [
        ["data", ", ".join(counts) + " (RUN/data)"],
        [
            "vocabulary",
            f"{plural(len(state['src_vocab']['tokens']), 'source token')} and "
            f"{plural(len(state['tgt_vocab']['tokens']), 'target token')}, each "
            f"with {plural(len(SPECIALS), 'special token')}",
        ],
        [
            "text processing",
            f"Chinese: {data.src_segmentation}; English: {data.tgt_tokenization}"
            + (", lowercased" if data.lowercase else ""),
        ],
        [
            "model",
            f"LSTM encoder-decoder, {plural(model.num_layers, 'layer')}, "
            f"{encoder} encoder, {attention}; embeddings {model.emb_size}, hidden "
            f"{model.hidden_size}; {plural(n_params, 'parameter')}",
        ],
    ]
    if metrics:
        rows.append(["training", _training_sentence(metrics)])
    return rows


def _training_sentence(metrics: list[dict]) -> str:
    last = metrics[-1]
    text = (
        f"{plural(len(metrics), 'epoch')} in {last.get('elapsed_s', 0):.0f} s; "
        f"final training loss {last['train_loss']:.4f}"
    )
    overfitting = overfitting_sentence(metrics)
    return text + (f"; {overfitting}" if overfitting else "")


def scores_sentence(translator, splits: dict, test_outputs: list[str]) -> str:
    """The held-out test scores, translated now; without a test split, the
    validation pairs' (the training pairs' when there is none either)."""
    config = translator.config
    test = splits["test"]
    if test:
        pairs, outputs, what = test, test_outputs, "held-out test pair"
        lead, where = "Test: ", "RUN/data/test.tsv, "
    else:
        pairs = splits["valid"] or splits["train"]
        what = "validation pair" if splits["valid"] else "training pair"
        lead, where = "No test split: ", ""
        outputs = translator.translate([p.src for p in pairs])
    if not pairs:
        return "No test, validation or training pairs in RUN/data: no scores."
    scores = score(
        outputs, [p.tgt for p in pairs], config.data.lowercase, interval=True
    )
    return (
        f"{lead}{scores.text('bleu')}, {scores.text('chrf')} on the "
        f"{plural(scores.n_sentences, what)} ({where}translated now, beam size "
        f"{config.decode.beam_size}; sacrebleu {scores.bleu_signature})."
        + (
            " The interval is sacrebleu's bootstrap over the sentences: on this "
            "few, a score is a rough figure."
            if scores.bleu_ci is not None
            else ""
        )
    )
