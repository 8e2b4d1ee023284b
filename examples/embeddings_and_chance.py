# %% [markdown]
# # Embeddings beside their chance levels
#
# Every figure of an embedding analysis means something only next to what
# vectors that learned nothing would give. This notebook reads a run's
# neighbours, pair similarities and topic groups that way.
#
# It uses the run `seqembed demo` writes (`runs/demo`); set `SEQEMBED_RUN`
# to use another.

# %%
import os
from pathlib import Path

import numpy as np

import seqembed

RUN = Path(os.environ.get("SEQEMBED_RUN", "runs/demo"))
if not RUN.exists():
    raise SystemExit(f"{RUN} not found: run `seqembed demo` first")
run = seqembed.load_run(RUN)
print(run)

# %% [markdown]
# ## Neighbours and the chance level of each rank
#
# For a table of this shape (words x dimensions) the chance column is the
# typical k-th best cosine between one random vector and all the others.

# %%
for word in ["天气", "妈妈", "吃"]:
    print(word)
    for other, cosine, chance in run.src.most_similar(word, topn=5, chance=True):
        print(f"   {other}\t{cosine:.3f}\t(chance {chance:.3f})")

# %% [markdown]
# The same check on random vectors of the same shape: their neighbours sit
# at the chance level, whatever the words.

# %%
rng = np.random.default_rng(0)
noise = seqembed.EmbeddingTable(
    run.src.index_to_key, rng.standard_normal(run.src.vectors.shape)
)
print([(w, round(c, 3), round(r, 3)) for w, c, r in
       noise.most_similar("天气", topn=5, chance=True)])  # fmt: skip

# %% [markdown]
# ## One pair: its cosine, the rank it holds, and that rank's chance level

# %%
for a, b in [("下雨", "下雪"), ("爸爸", "妈妈"), ("天气", "公司")]:
    cosine, chance = run.src.similarity(a, b, chance=True)
    before = run.initial.src.similarity(a, b)
    print(f"{a}-{b}: {cosine:.3f} (chance at its rank {chance:.3f}, "
          f"before training {before:.3f})")  # fmt: skip

# %% [markdown]
# ## The whole analysis
#
# Every test of a side is corrected together (Holm), so "above chance" holds
# after looking at all of them.

# %%
result = seqembed.analyze(run, groups="builtin", contextual=False, movement=False)
print(result.summary())
for finding in result.findings_above_chance():
    print(f"{finding.side}: {finding.subject}: {finding.value:.3f} (chance "
          f"{finding.chance:.3f}, adjusted p {finding.p_adjusted:.2g})")  # fmt: skip

# %%
not_above = [f for f in result.findings if not f.above_chance]
print(len(not_above), "findings are what random vectors would also show, e.g.:")
for finding in not_above[:5]:
    # A top pair must also beat the best pair of random tables with this
    # table's own mean and covariance (shaped_chance).
    shaped = finding.shaped_chance
    beyond = f", shaped {shaped:.3f}" if shaped is not None else ""
    value, level = finding.value, finding.chance
    print(f"   {finding.subject}: {value:.3f}, chance {level:.3f}{beyond}")

# %% [markdown]
# A map coloured by each word's verdict (red: in a finding above chance).

# %%
fig = seqembed.plot_map(run, color="chance", analysis=result, method="pca")
(RUN / "figures").mkdir(exist_ok=True)
fig.savefig(RUN / "figures" / "map-chance.png")
print("wrote", RUN / "figures" / "map-chance.png")
