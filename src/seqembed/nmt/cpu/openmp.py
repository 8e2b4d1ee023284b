"""How torch's idle OpenMP threads wait: chosen before torch is imported.

torch's pip wheels run their CPU threads on GNU OpenMP (libgomp), which reads
its settings once, when torch loads it. Between two parallel operations an
idle thread either spins (default: ~3 ms) or sleeps (OMP_WAIT_POLICY=PASSIVE):

* spinning: with another busy process on a 2-core machine, torch with 2
  threads ran 4-5x slower than with 1 (the spinning thread takes the core
  the working one needs);
* sleeping: every operation split over threads first wakes the sleeping one,
  which on a training step of many small operations adds up.

A short spin, ``GOMP_SPINCOUNT=1000`` (about 10 us, libgomp counts ~100,000
spins a millisecond), catches the next operation of the same step but gives
the core up soon after. Measured with bench/wait_policy.py (fp32 input
feeding, matched config of bench/speed.py, 2 threads, 2 cores; the figures
are in the Threads section of docs/benchmarks.md): longer spins train
10-20% faster on an idle machine and up to half slower next to one busy
process, so the default stays short and a dedicated machine may set more.
"""

from __future__ import annotations

import os
import sys

SHORT_SPIN = "1000"


def choose_wait_policy() -> str:
    """Set ``GOMP_SPINCOUNT`` to the short spin, unless the user chose a
    policy (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set) or torch is
    already imported (too late to matter). Returns the policy in effect, in
    words, for logs and benchmarks."""
    chosen = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
              if k in os.environ}  # fmt: skip
    if not chosen and "torch" not in sys.modules:
        os.environ["GOMP_SPINCOUNT"] = SHORT_SPIN
        chosen = {"GOMP_SPINCOUNT": SHORT_SPIN}
    if not chosen:
        return "OpenMP's default (torch was imported first)"
    return " ".join(f"{k}={v}" for k, v in chosen.items())
