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


#: environment variable: folder for s2clouds' caches (default: $XDG_CACHE_HOME/s2clouds, else
#: ~/.cache/s2clouds)
CACHE_DIR_ENV = "S2CLOUDS_CACHE_DIR"


def user_cache_dir() -> str:
    """The folder s2clouds keeps small caches in (not created here): ``S2CLOUDS_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/s2clouds``, else ``~/.cache/s2clouds``."""
    given = os.environ.get(CACHE_DIR_ENV, "")
    if given:
        return given
    base = os.environ.get("XDG_CACHE_HOME", "") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "s2clouds")
