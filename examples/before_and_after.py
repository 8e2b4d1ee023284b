# %% [markdown]
# # A model's embeddings before and after training
#
# Every checkpoint keeps the random embeddings a run started from
# (`run.initial`), so what training changed can be measured word by word.
#
# It uses the run `seqembed demo` writes (`runs/demo`); set `SEQEMBED_RUN`
# to use another. `seqembed demo --seed-example` makes the design document's
# five-pair run: there almost nothing moves.

# %%
import os
from pathlib import Path

import numpy as np

import seqembed

RUN = Path(os.environ.get("SEQEMBED_RUN", "runs/demo"))
if not RUN.exists():
    raise SystemExit(f"{RUN} not found: run `seqembed demo` first")
run = seqembed.load_run(RUN)
trained, initial = run.src, run.initial.src
assert trained.index_to_key == initial.index_to_key  # the same words, in order

# %% [markdown]
# ## How far each vector moved, relative to its length

# %%
moved = np.linalg.norm(trained.vectors - initial.vectors, axis=1) / initial.norms
order = np.argsort(moved)
print(f"mean relative movement {moved.mean():.1%}")
print("moved most: ", [trained.index_to_key[i] for i in order[::-1][:8]])
print("moved least:", [trained.index_to_key[i] for i in order[:8]])
freqs = trained.freqs
print("correlation of movement with frequency:",
      round(float(np.corrcoef(moved, np.log(freqs))[0, 1]), 3))  # fmt: skip

# %% [markdown]
# ## Did the similarity structure change?
#
# The correlation of every pair's cosine before and after training: near 1,
# training left the geometry of random starting vectors in place.


# %%
def pair_cosines(table):
    unit = table.unit_vectors()
    upper = np.triu_indices(len(unit), 1)
    return (unit @ unit.T)[upper]


before, after = pair_cosines(initial), pair_cosines(trained)
correlation = np.corrcoef(before, after)[0, 1]
print(f"{len(before):,} pairs; correlation before/after {correlation:.3f}")

# %% [markdown]
# ## Neighbours before and after

# %%
for word in ["天气", "爸爸", "吃"]:
    now = [w for w, _ in trained.most_similar(word, topn=5)]
    then = [w for w, _ in initial.most_similar(word, topn=5)]
    print(f"{word}: after {now}  before {then}  shared {len(set(now) & set(then))}")

# %% [markdown]
# ## Pairs that training brought together

# %%
words = trained.index_to_key
i, j = np.triu_indices(len(words), 1)
gain = after - before
for k in np.argsort(gain)[::-1][:8]:
    print(f"{words[i[k]]}-{words[j[k]]}: {before[k]:+.3f} -> {after[k]:+.3f}")
