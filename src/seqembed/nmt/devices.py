"""The device a run computes on (``resolve_device``: the CPU, a CUDA GPU or
Apple's MPS), what this machine's processor offers (read once), and the
precision each device can run (``resolve_precision``).

``auto`` takes a CUDA GPU where torch sees one, else Apple's MPS, else the
CPU. The CPU kernels (``seqembed.nmt.cpu``) run on the CPU only.

bfloat16 autocast is only worth having where the CPU multiplies bf16 natively
(AVX512-BF16, AMX; oneDNN also runs it on any AVX-512 core). On an AVX2-only
CPU (AMD Zen 3, most laptops before 2022) oneDNN has no bf16 LSTM at all (a
RuntimeError from deep inside torch) and a bf16 matrix product runs about 30x
slower than fp32 (1.3 against 82 GFLOP/s on a Zen 3 host), so a bf16 request
there is refused before any work, or switched to fp32 when the user asked for
``auto``.

``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``
make a newer CPU choose the kernels of an AVX2-only one; ``native_bf16`` follows
oneDNN's limit, so such a restricted process refuses bf16 as a real one would.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from seqembed.config import DEVICE
from seqembed.errors import InputError

log = logging.getLogger(__name__)

# "default": the device's own: fp32 on the CPU (bitwise as ever) and on MPS,
# bf16 on a CUDA GPU that has it (fp16 on one without). "auto": the fastest
# the device runs natively (bf16 on a CPU with native bf16, else fp32).
PRECISIONS = ("fp32", "bf16", "fp16", "auto", "default")
DEVICE_PATTERN, DEVICE_CHOICES = DEVICE


@dataclass(frozen=True)
class CpuInfo:
    vendor: str  # "GenuineIntel", "AuthenticAMD", "" where /proc/cpuinfo is not
    model_name: str
    # torch's ATen kernel level: "DEFAULT", "AVX2", "AVX512", ...
    capability: str
    avx512_bf16: bool  # the CPU's flags, whatever the process is limited to
    amx: bool
    # oneDNN runs bf16 products and LSTMs in this process (its ISA limit
    # included): the one fact the precision choice needs.
    native_bf16: bool

    def describe(self) -> str:
        """One line for the log: ``Intel(R) Xeon(R) ... (GenuineIntel): AVX512,
        AVX512-BF16, AMX; bf16 native``."""
        features = [self.capability]
        if self.avx512_bf16:
            features.append("AVX512-BF16")
        if self.amx:
            features.append("AMX")
        bf16 = "bf16 native" if self.native_bf16 else "no native bf16"
        name = self.model_name or "unknown CPU"
        vendor = f" ({self.vendor})" if self.vendor else ""
        return f"{name}{vendor}: {', '.join(features)}; {bf16}"


def _proc_cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux); {} elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _onednn_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


@functools.cache
def cpu_info() -> CpuInfo:
    fields = _proc_cpuinfo()
    flags = set(fields.get("flags", "").split())
    return CpuInfo(
        vendor=fields.get("vendor_id", ""),
        model_name=fields.get("model name", ""),
        capability=torch.backends.cpu.get_cpu_capability(),
        avx512_bf16="avx512_bf16" in flags,
        amx="amx_bf16" in flags,
        native_bf16=_onednn_bf16(),
    )


def resolve_device(requested: str, key: str = "--device") -> torch.device:
    """The device ``requested`` names ("auto", "cpu", "cuda", "cuda:N",
    "mps"), checked against this machine; ``key`` names the flag or setting
    in the one-line InputError a device that is not here gets."""
    said = f"{key} {requested}" if key.startswith("--") else f"{key}={requested}"
    cpu = f"{key} cpu" if key.startswith("--") else f"{key}=cpu"
    if not isinstance(requested, str) or not re.fullmatch(DEVICE_PATTERN, requested):
        raise InputError(f"{key} must be one of {DEVICE_CHOICES}, got {requested!r}")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(
                f"{said}: no CUDA device here (torch {torch.__version__}); use {cpu}"
            )
        if device.index is not None and device.index >= count:
            names = ", ".join(f"cuda:{i}" for i in range(count))
            raise InputError(
                f"{said}: this machine has {count} CUDA device(s) ({names}); "
                f"use one of them or {cpu}"
            )
        return torch.device("cuda", device.index or 0)
    if device.type == "mps" and not _mps_available():
        where = (
            "this macOS or torch build has no MPS"
            if sys.platform == "darwin"
            else f"Apple's MPS is on macOS only (this is {sys.platform})"
        )
        raise InputError(f"{said}: {where}; use {cpu}")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_device(device: torch.device) -> str:
    """One line for the log: the device, its name and memory (for the CPU,
    ``CpuInfo.describe``)."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (
            f"{device}: {props.name}, {props.total_memory / 2**30:.1f} GiB, "
            f"compute capability {props.major}.{props.minor}"
        )
    if device.type == "mps":
        memory = torch.mps.recommended_max_memory() / 2**30
        return f"mps: Apple GPU, {memory:.1f} GiB recommended working set"
    return f"cpu: {cpu_info().describe()}"


def resolve_precision(
    requested: str, key: str, device: torch.device | None = None
) -> str:
    """The precision a run on ``device`` (the CPU when None) uses: "fp32",
    "bf16" or "fp16"; ``key`` names the setting in messages."""
    if requested not in PRECISIONS:
        raise InputError(f"{key} must be one of {', '.join(PRECISIONS)}")
    kind = device.type if device is not None else "cpu"
    if requested == "fp32":
        return "fp32"
    if kind == "cuda":
        return _cuda_precision(requested, key, device)
    if requested == "fp16":
        raise InputError(
            f"{key}=fp16: float16 autocast is for CUDA GPUs; use fp32 or bf16"
        )
    if kind == "mps":  # MPS runs bf16 and fp16 autocast where asked
        return "fp32" if requested in ("auto", "default") else requested
    if requested == "default":  # the CPU keeps its fp32 numbers
        return "fp32"
    return _cpu_precision(requested, key)


def _cuda_precision(requested: str, key: str, device: torch.device) -> str:
    """bf16 where the GPU has it (Ampere and later), else fp16 with a
    gradient scaler; an explicit fp16 stays fp16."""
    if requested == "fp16":
        return "fp16"
    with torch.cuda.device(device):
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    if bf16:
        return "bf16"
    log.warning(
        "%s=%s: %s has no native bfloat16; using fp16 with a gradient scaler",
        key, requested, torch.cuda.get_device_name(device),
    )  # fmt: skip
    return "fp16"


def _cpu_precision(requested: str, key: str) -> str:
    """bf16 where the CPU multiplies it natively; "auto" falls back to fp32."""
    info = cpu_info()
    if info.native_bf16:
        return "bf16"
    if requested == "auto":
        log.warning(
            "%s=auto: this CPU has no native bfloat16 (%s); using fp32",
            key,
            info.capability,
        )
        return "fp32"
    raise InputError(
        f"{key}=bf16: this CPU has no native bfloat16 ({info.capability}); "
        "it would run about 30x slower; use fp32"
    )


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """``train.deterministic`` while ``train`` runs: torch's deterministic
    algorithms only (an error names any op that has none), cuDNN's
    deterministic kernels and no cuDNN benchmarking; cuBLAS then needs a
    fixed workspace (its documented setting, read when CUDA starts). The
    process's own settings are put back afterwards."""
    if not enabled:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype autocast runs in for a resolved precision; None for fp32."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
