"""What every cloud model looks like to the inference engine and the benchmark."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from s2clouds.labels.schemes import CANONICAL_CLASSES

N_CLASSES = len(CANONICAL_CLASSES)  # 4: clear, thick cloud, thin cloud, cloud shadow


@runtime_checkable
class CloudModel(Protocol):
    """Anything that maps a reflectance stack to canonical class probabilities.

    ``bands``: canonical band names the model needs, in the order it wants them.
    ``predict_proba(image, context)``: ``image`` is (C, H, W) float32 reflectance (0-1) in
    ``bands`` order, NaN where there is no data; returns (4, H, W) float32 probabilities of
    the canonical classes (clear, thick cloud, thin cloud, cloud shadow) that sum to 1.
    ``context`` carries scene facts: ``resolution`` (m), ``sun_zenith``/``sun_azimuth``
    (degrees) when known.
    ``halo``: pixels of context the model needs around a tile for tiled inference.
    """

    @property
    def name(self) -> str: ...

    @property
    def bands(self) -> tuple[str, ...]: ...

    @property
    def halo(self) -> int: ...

    def predict_proba(self, image: np.ndarray, context: dict[str, Any]) -> np.ndarray: ...
