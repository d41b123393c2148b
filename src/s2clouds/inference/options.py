"""What a prediction run can be told (see :class:`PredictOptions`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from s2clouds.models.registry import DEFAULT_MODEL


@dataclass(frozen=True)
class PredictOptions:
    """Everything a prediction run can be told, in one place.

    ``resolution``: output grid in metres (10, 20 or 60; None = the finest input band).
    ``block``: output window edge in pixels processed at once (memory grows with block^2).
    ``tile``/``overlap``: model tiles inside a block for models with a fixed input size.
    ``probabilities``: also write per-class probabilities (percent) beside the mask.
    """

    model: str = DEFAULT_MODEL
    resolution: float | None = None
    bands: tuple[str, ...] | None = None
    level: str | None = None
    scale: str | None = None
    block: int = 1024
    tile: int = 512
    overlap: int = 64
    probabilities: bool = False
    quicklook: Path | None = None
    overwrite: bool = True
    progress: bool = True
