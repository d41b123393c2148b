"""What a prediction run can be told, in three parts with one meaning each: how inputs are
read (:class:`ReadOptions`), how the model runs (:class:`RunOptions`) and what is written
(:class:`OutputOptions`); :class:`PredictOptions` holds the three and the progress display."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2clouds.models.registry import DEFAULT_MODEL


@dataclass(frozen=True)
class ReadOptions:
    """How inputs are opened (see :func:`~s2clouds.io.scenes.read_scene`).

    ``bands``: band names (file order for a GeoTIFF; a selection otherwise; required for an
    array). ``level``: ``"L1C"``/``"L2A"`` when the input does not say. ``scale``: ``"dn"`` or
    ``"reflectance"`` to override the guess from the data type. ``resolution``: the output
    grid in metres (10, 20 or 60; None: the finest input band); an array is never resampled,
    so for an array it must be None or its ``pixel_size``. ``pixel_size``: metres per pixel of
    an array input (None: 10 m); files carry their own georeference. ``sign``: the signing
    hook for remote STAC assets (a name such as ``module:function``, so it pickles).
    """

    bands: tuple[str, ...] | None = None
    level: str | None = None
    scale: str | None = None
    resolution: float | None = None
    pixel_size: float | None = None
    sign: str | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~s2clouds.io.scenes.read_scene`."""
        return {
            "bands": self.bands,
            "level": self.level,
            "scale": self.scale,
            "resolution": self.resolution,
            "pixel_size": self.pixel_size,
            "sign": self.sign,
        }


@dataclass(frozen=True)
class RunOptions:
    """How the model runs over a scene (none of these change where results are written).

    ``model``: a registry name, ``"auto"`` or a model file path. ``block``: output window
    edge in pixels computed at once (memory grows with block^2). ``tile``/``overlap``: model
    tiles inside a block, in pixels, for models with a fixed input size. ``exact_reads``:
    a model that works coarser than the grid (the 20 m pixel models on 10 m bands) gets
    exact block means of the full-resolution pixels, decoded in full, instead of the coarser
    levels the files hold (JPEG 2000 resolution levels, nearest-built overviews), which cost
    a quarter of the decoding at 20 m; average-built COG overviews hold exact block means
    and are read either way (see docs/speed.md).
    """

    model: str = DEFAULT_MODEL
    block: int = 1024
    tile: int = 512
    overlap: int = 64
    exact_reads: bool = False


@dataclass(frozen=True)
class OutputOptions:
    """What is written beside the mask.

    ``probabilities``: also write per-class probabilities (uint8 percent) as
    ``<stem>.proba.tif``. ``quicklook``: a PNG of the mask over true colour (one scene only).
    ``overwrite``: replace outputs that exist; without it a single prediction refuses an
    existing mask, and a batch skips the scenes whose outputs are complete.
    """

    probabilities: bool = False
    quicklook: Path | None = None
    overwrite: bool = True


@dataclass(frozen=True)
class PredictOptions:
    """Everything a prediction can be told: reading, running, output, and whether to show a
    progress display (``progress``)."""

    read: ReadOptions = field(default_factory=ReadOptions)
    run: RunOptions = field(default_factory=RunOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    progress: bool = True
