"""The CPU's capabilities and the precision it can run, on this host and on a
process restricted to an AVX2-only CPU's kernels (as on AMD Zen 3)."""

import os
import subprocess
import sys

import pytest

from seqembed.cli.demo import SEED_PAIRS
from seqembed.errors import InputError
from seqembed.nmt.devices import cpu_info, resolve_precision

# What an AVX2-only CPU gives torch, oneDNN and MKL; on an AVX2 host it is
# the machine itself.
AVX2_ONLY = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


def seqembed(*args, env=None):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "seqembed", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def in_process(code: str, env: dict) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_cpu_info_names_the_capability_torch_uses():
    import torch

    info = cpu_info()
    assert info.capability == torch.backends.cpu.get_cpu_capability()
    line = info.describe()
    assert info.capability in line
    assert ("bf16 native" in line) == info.native_bf16
    if sys.platform == "linux":
        assert info.vendor and info.model_name in line


@pytest.mark.slow
def test_an_avx2_restricted_process_has_no_native_bf16():
    code = (
        "from seqembed.nmt.devices import cpu_info; i = cpu_info(); "
        "print(i.capability, i.native_bf16)"
    )
    assert in_process(code, AVX2_ONLY) == "AVX2 False"


def test_fp32_is_always_fp32_and_bad_names_are_refused():
    assert resolve_precision("fp32", "train.precision") == "fp32"
    with pytest.raises(InputError, match="train.precision must be one of"):
        resolve_precision("fp8", "train.precision")
    with pytest.raises(InputError, match="fp16: float16 autocast is for CUDA"):
        resolve_precision("fp16", "train.precision")
    # the default keeps the CPU's numbers: fp32, whatever the CPU offers
    assert resolve_precision("default", "train.precision") == "fp32"


@pytest.mark.bf16
def test_bf16_and_auto_stay_bf16_where_it_is_native():
    assert resolve_precision("bf16", "decode.precision") == "bf16"
    assert resolve_precision("auto", "decode.precision") == "bf16"


@pytest.mark.slow
def test_bf16_training_on_an_avx2_cpu_is_one_line_before_any_work(tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
    out = tmp_path / "run"
    result = seqembed(
        "train", corpus, "--out", out, "--set", "train.precision=bf16", env=AVX2_ONLY
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        "seqembed: error: train.precision=bf16: this CPU has no native bfloat16 "
        "(AVX2); it would run about 30x slower; use fp32"
    )
    assert not (out / "last.pt").exists()


@pytest.mark.slow
def test_auto_precision_on_an_avx2_cpu_warns_and_trains_in_fp32(tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
    out = tmp_path / "run"
    result = seqembed(
        "train",
        corpus,
        "--out",
        out,
        "--set",
        "train.precision=auto",
        "--set",
        "train.epochs=2",
        env=AVX2_ONLY,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "train.precision=auto: this CPU has no native bfloat16 (AVX2); "
        "using fp32" in result.stderr
    )
    cpu_line = next(x for x in result.stderr.splitlines() if "device cpu: " in x)
    assert ": AVX2" in cpu_line and cpu_line.endswith("; no native bf16")
    assert "precision: fp32" in (out / "config.yaml").read_text()


@pytest.mark.slow
def test_bf16_decoding_on_an_avx2_cpu_is_one_line(seed_run):
    result = seqembed(
        "translate", seed_run, "我爱你", "--precision", "bf16", env=AVX2_ONLY
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "seqembed: error: decode.precision=bf16: this CPU has no native bfloat16 "
        "(AVX2); it would run about 30x slower; use fp32"
    ]
    assert result.stdout == ""
    sentences = [zh for zh, _ in SEED_PAIRS]
    auto = seqembed(
        "translate", seed_run, *sentences, "--precision", "auto", env=AVX2_ONLY
    )
    assert auto.returncode == 0, auto.stderr
    assert "decode.precision=auto: this CPU has no native bfloat16" in auto.stderr
    fp32 = seqembed("translate", seed_run, *sentences, env=AVX2_ONLY)
    assert auto.stdout == fp32.stdout and len(auto.stdout.splitlines()) == 5
