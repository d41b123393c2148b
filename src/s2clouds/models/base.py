"""What every cloud model looks like to the inference engine and the benchmark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from s2clouds.labels.schemes import CANONICAL_CLASSES

N_CLASSES = len(CANONICAL_CLASSES)  # 4: clear, thick cloud, thin cloud, cloud shadow

#: ``(overview (C, h, w) float32 reflectance in model band order, metres per overview pixel)``
#: -> ``(sun zenith, sun azimuth)`` in degrees
SunAngleEstimator = Callable[[np.ndarray, float], tuple[float, float]]


@runtime_checkable
class CloudModel(Protocol):
    """Anything that maps a reflectance stack to canonical class probabilities.

    Every model has:

    ``name``; ``bands``: canonical band names the model needs, in the order it wants them.
    ``predict_proba(image, context)``: ``image`` is (C, H, W) float32 reflectance (0-1) in
    ``bands`` order, NaN where there is no data; returns (4, H, W) float32 probabilities of
    the canonical classes (clear, thick cloud, thin cloud, cloud shadow) that sum to 1.
    ``context`` carries scene facts: ``resolution`` (m), ``level``, ``sun_zenith``/
    ``sun_azimuth`` (degrees) when known.
    ``halo``: pixels of context the model needs around a window at 10 m.

    Optional members have defaults here; models subclass :class:`CloudModel` to inherit them
    and override what they need:

    ``required_halo(context)``: pixels of context around a window for this scene (default
    ``halo``): the radius of the model's receptive field, so that a pixel's result does not
    depend on where the window around it was cut (``--block``).
    ``required_alignment(context)``: windows are read from rows and columns that are
    multiples of this (default 1), so that the model's internal grids (pooling, block means,
    sampled cells) fall on the same scene pixels whatever the block.
    ``tile_size``: the fixed input edge in pixels the engine cuts blocks into (overlapping,
    feathered tiles); None (the default): the model takes any size; 0: the run's tile option.
    ``estimate_sun_angles``: a :data:`SunAngleEstimator`, called once per scene on an
    overview when the scene has no sun angles; None (the default): the model needs none.
    """

    estimate_sun_angles: SunAngleEstimator | None = None

    @property
    def name(self) -> str: ...

    @property
    def bands(self) -> tuple[str, ...]: ...

    @property
    def halo(self) -> int: ...

    @property
    def tile_size(self) -> int | None:
        return None

    def required_halo(self, context: dict[str, Any]) -> int:
        return self.halo

    def required_alignment(self, context: dict[str, Any]) -> int:
        return 1

    def predict_proba(self, image: np.ndarray, context: dict[str, Any]) -> np.ndarray: ...
