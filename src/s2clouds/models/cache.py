"""One cache of built models per process, shared by inference workers and the benchmark."""

from __future__ import annotations

import functools

from s2clouds.models.base import CloudModel
from s2clouds.models.registry import get_model


@functools.lru_cache(maxsize=8)
def cached_model(name: str, bands: tuple[str, ...]) -> CloudModel:
    """The model ``name`` for ``bands`` (see :func:`~s2clouds.models.registry.get_model`),
    built once per process."""
    return get_model(name, bands)
