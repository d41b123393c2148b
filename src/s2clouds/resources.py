"""What the machine lends this process (no s2clouds imports: every layer may use it)."""

from __future__ import annotations

import os


def cpu_cores() -> int:
    """CPU cores this process may use (respects affinity masks and containers' cpusets)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
