"""What this machine's processor offers, read once, and the precision it can run.

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

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from seqembed.errors import InputError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "auto")


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


def resolve_precision(requested: str, key: str) -> str:
    """The precision a CPU run uses, "fp32" or "bf16"; ``key`` names the
    setting in messages.

    "bf16" where the CPU has no native bf16 is an InputError; "auto" takes
    bf16 where it is native and fp32 elsewhere (with a warning there)."""
    if requested not in PRECISIONS:
        raise InputError(f"{key} must be one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return "fp32"
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
