"""s2clouds: cloud and cloud-shadow masks for Sentinel-2.

Importing the package is cheap; the entry points below load their modules on first use:

- :func:`predict` (``s2clouds.inference.predict``): mask one scene into a COG;
- :func:`read_scene` (``s2clouds.io.scenes``): open any input as a lazy scene;
- :func:`open_dataset` (``s2clouds.datasets.registry``): read a labelled dataset;
- :func:`list_models` and :func:`load_model` (``s2clouds.models.registry``; ``load_model`` is
  ``get_model(name, available_bands, level)``);
- :func:`run_benchmark` (``s2clouds.benchmark.runner``): score maskers on a dataset.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> (module, attribute), imported on first use
_ENTRY_POINTS: dict[str, tuple[str, str]] = {
    "predict": ("s2clouds.inference.predict", "predict"),
    "read_scene": ("s2clouds.io.scenes", "read_scene"),
    "open_dataset": ("s2clouds.datasets.registry", "open_dataset"),
    "list_models": ("s2clouds.models.registry", "list_models"),
    "load_model": ("s2clouds.models.registry", "get_model"),
    "run_benchmark": ("s2clouds.benchmark.runner", "run_benchmark"),
}

__all__ = ["__version__", *_ENTRY_POINTS]


def __getattr__(name: str) -> Any:
    """Load an entry point of :data:`_ENTRY_POINTS` on first use (PEP 562)."""
    if name not in _ENTRY_POINTS:
        raise AttributeError(f"module 's2clouds' has no attribute {name!r}")
    module, attribute = _ENTRY_POINTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ENTRY_POINTS})
