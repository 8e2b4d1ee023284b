"""Attention heatmaps: which source words each output word looked at.

``evaluation.Translator.attention(text)`` translates one sentence greedily
and returns an ``Attention`` (source tokens, target steps, weights);
``attention_figure`` draws it, target steps as rows and source tokens as
columns, with the source tokens in the CJK font.
"""

from __future__ import annotations

import numpy as np

from seqembed.data.vocab import SPECIALS
from seqembed.report.figures import new_figure
from seqembed.report.fonts import cjk_rc

UNKNOWN_COLOR = "#a0a0a0"
MAX_ANNOTATED_CELLS = 400  # write the weight in each cell up to this many


def attention_figure(attention, title: str | None = None):
    """Heatmap of an ``evaluation.Attention``; source tokens the vocabulary
    does not know (read as <UNK>) are labelled in grey."""
    weights = attention.weights  # (target steps, source tokens)
    n_tgt, n_src = weights.shape
    with cjk_rc():
        figure = new_figure(max(4.0, 1.5 + 0.6 * n_src), max(3.0, 1.2 + 0.4 * n_tgt))
        ax = figure.add_subplot()
        image = ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
        ax.xaxis.tick_top()  # read like a sentence: source words on top
        ax.set_xticks(
            range(n_src), attention.src_tokens, rotation=45 if n_src > 12 else 0
        )
        ax.set_yticks(range(n_tgt), attention.tgt_tokens)
        for tick, known in zip(ax.xaxis.get_major_ticks(), attention.src_known):
            if not known:
                tick.label1.set_color(UNKNOWN_COLOR)
                tick.label2.set_color(UNKNOWN_COLOR)
        if n_src * n_tgt <= MAX_ANNOTATED_CELLS:
            for (t, s), value in np.ndenumerate(weights):
                ax.text(
                    s, t, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 else "#333333",
                )  # fmt: skip
        figure.colorbar(image, ax=ax, label="attention weight")
        source = "".join(attention.src_tokens)
        translation = " ".join(t for t in attention.tgt_tokens if t not in SPECIALS)
        ax.set_title(title or f"{source} → {translation}")
        if not all(attention.src_known):
            ax.set_xlabel("grey: not in the source vocabulary (read as <UNK>)")
    return figure
