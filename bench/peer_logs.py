"""The peers' training speed, read from their own logs (no torch here)."""

from __future__ import annotations

import re
from pathlib import Path


def opennmt_tgt_tokens_per_s(log: Path) -> float | None:
    """Mean target tokens/s of OpenNMT-py's progress reports after the first
    (as ../shared/peers/onmt_log_stats.py computes it); None with fewer than
    two reports."""
    rates = [
        float(m.group(1))
        for m in re.finditer(r"\d+/\s*(\d+) tok/s", log.read_text(errors="replace"))
    ]
    return sum(rates[1:]) / len(rates[1:]) if len(rates) > 1 else None
