"""What the machine lends this process (no s2clouds imports: every layer may use it)."""

from __future__ import annotations

import os


def cpu_cores() -> int:
    """CPU cores this process may use (respects affinity masks and containers' cpusets)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


#: environment variable: threads a model may use in this process (set for local Dask worker
#: processes, which share the machine's cores)
MODEL_THREADS_ENV = "S2CLOUDS_MODEL_THREADS"


def model_threads() -> int:
    """Threads a model (LightGBM, ONNX Runtime) may use here: ``S2CLOUDS_MODEL_THREADS``
    when set (a local Dask worker's share of the cores), else every usable core."""
    given = os.environ.get(MODEL_THREADS_ENV, "")
    return max(1, int(given)) if given.isdigit() else cpu_cores()
