# %% [markdown]
# # seqembed: quickstart
#
# Train a small translator on the corpus that ships with seqembed, translate
# with it, and read its nearest neighbours beside their chance levels.
# Open this file as a notebook (VS Code, or Jupyter with jupytext), or run it
# with `python examples/quickstart.py`. Training takes under a minute on a
# laptop CPU; a second run loads the model it saved.

# %%
import logging
import os
from pathlib import Path

import seqembed

logging.basicConfig(level=logging.INFO, format="%(message)s")  # seqembed logs
OUT = Path(os.environ.get("SEQEMBED_EXAMPLE_OUT", "runs/quickstart"))
EPOCHS = int(os.environ.get("SEQEMBED_EXAMPLE_EPOCHS", "40"))

# %% [markdown]
# ## Train
#
# The demo's settings: 64-dimensional embeddings, Luong attention, the 395
# built-in pairs with their jieba user dictionary. Settings are config keys
# (see the configuration reference); a misspelled one is an error naming it.

# %%
settings = {
    "data.valid_size": 30,
    "data.test_size": 30,
    "vocab.min_freq": 1,
    "model.emb_size": 64,
    "model.hidden_size": 128,
    "model.dropout": 0.1,
    "train.batch_size": 16,
    "train.lr": 0.003,
    "train.lr_schedule": "none",
    "train.patience": 0,
}
if (OUT / "last.pt").exists():
    run = seqembed.load_run(OUT)
else:
    run = seqembed.train(
        seqembed.builtin_corpus(),
        OUT,
        user_dict=seqembed.builtin_user_dict(),
        epochs=EPOCHS,
        **settings,
    )
print(run)
print("last epoch:", run.metrics()[-1])

# %% [markdown]
# ## Translate
#
# A string in, a string out; a list in, a list out.

# %%
print(run.translate("今天天气很好"))
print(run.translate(["我爱自然语言处理", "机器学习很有趣"], beam=5))

# %% [markdown]
# `translate_detailed` shows what the model saw: the tokens, the words it
# does not know (read as `<UNK>`, not an error), the log-probability of its
# translation, and where it looked.

# %%
detail = run.translate_detailed("我们明天去北京")
print(detail.src_tokens, "unknown:", detail.unknown)
print(detail.text, f"(log-probability {detail.log_prob:.2f})")
if detail.attention is not None:
    for token, row in zip(detail.attention.tgt_tokens, detail.attention.weights):
        print(f"{token:>12}", " ".join(f"{w:.2f}" for w in row))

# %% [markdown]
# ## Nearest neighbours, beside chance
#
# `chance=True` adds the cosine that random vectors of this table's shape
# have at each rank: a neighbour below it is what learning nothing gives.

# %%
for word, cosine, chance in run.src.most_similar("天气", topn=5, chance=True):
    mark = "above" if cosine > chance else "below"
    print(f"{word}\t{cosine:.3f}\tchance {chance:.3f}\t{mark}")

# %%
try:
    run.src.most_similar("量子")
except seqembed.UnknownWordError as error:
    print(error)
