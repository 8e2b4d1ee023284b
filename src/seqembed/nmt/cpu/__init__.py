"""Fast CPU kernels behind one seam, each with a reference twin.

The seam is ``kernels.accelerate(model)``, which ``nmt.build.build_model``
calls once when ``model.kernels`` is "auto" (see there). The others here
are process settings: ``allocator`` (malloc thresholds), ``openmp`` (the
OpenMP wait policy, chosen before torch is imported: this package's
``__init__`` imports nothing).
"""
