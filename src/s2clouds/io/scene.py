"""The scene: a lazily read stack of band sources on one grid, with its radiometry and sun
angles.

A :class:`Scene` never holds a whole tile in memory: :meth:`Scene.read` reads one window of
every band (any :class:`~s2clouds.io.bands.BandSource`: :class:`RasterBand` from files,
:class:`ArrayBand` from memory), resampled onto the scene grid, and converts it to
reflectance. The band sources are in :mod:`s2clouds.io.bands`, the overview heuristics in
:mod:`s2clouds.io.overviews`, raster headers in :mod:`s2clouds.io.headers`, sun angles in
:mod:`s2clouds.io.sun`; the openers of every format are in :mod:`s2clouds.io.scenes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError, RadiometryError
from s2clouds.io.bands import ArrayBand, BandSource, RasterBand, read_bands
from s2clouds.io.grid import Grid, Window
from s2clouds.io.sun import SunAngles
from s2clouds.radiometry import Radiometry, check_bands, check_level, to_reflectance

#: the types a Scene is made of, importable from here
__all__ = ["ArrayBand", "BandSource", "RasterBand", "Scene", "SunAngles"]


@dataclass(frozen=True)
class Scene:
    """A Sentinel-2 scene on one grid.

    ``sources`` hold one band each in ``bands`` order; ``grid`` is the target grid (all bands
    are resampled onto it); ``radiometry`` says how stored values become reflectance; ``angles``
    are the mean sun (and view) angles when known; ``level`` is ``"L1C"``, ``"L2A"`` or None.
    ``priors`` are scene-level facts that the inference engine computes once, before the
    windows, from a whole-scene overview (e.g. ``"shadow_reach"``, a
    :class:`~s2clouds.io.grid.CoarseMask` of where a cloud can cast its shadow).
    """

    sources: tuple[BandSource, ...]
    grid: Grid
    radiometry: Radiometry
    angles: SunAngles | None = None
    level: str | None = None
    product_id: str = "scene"
    meta: dict[str, Any] = field(default_factory=dict)
    priors: dict[str, Any] = field(default_factory=dict)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(s.band for s in self.sources)

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    def input_files(self) -> tuple[str, ...]:
        """Every file this scene is read from, which no output may overwrite: its path, the
        files its reader opened (``meta["files"]``, e.g. bands that were not selected) and the
        files of its raster sources (GDAL paths such as ``/vsizip/...``)."""
        opened = [
            *self.meta.get("files", ()),
            *([self.meta["path"]] if "path" in self.meta else []),
        ]
        return (*opened, *(f for s in self.sources for f in s.files()))

    def select(self, bands: Sequence[str]) -> Scene:
        """The same scene restricted to ``bands`` (any spelling), in that order."""
        wanted = canonical_band_names(bands)
        by_name = {s.band: s for s in self.sources}
        missing = [b for b in wanted if b not in by_name]
        if missing:
            raise BandError(
                f"{self.product_id} lacks band(s) {', '.join(missing)}; it has "
                f"{', '.join(self.bands)}. Use a model that needs fewer bands or give more bands"
            )
        return replace(self, sources=tuple(by_name[b] for b in wanted))

    def read(self, window: Window | None = None) -> np.ndarray:
        """Reflectance ``(C, h, w)`` float32 of ``window`` (whole scene when None); NaN = no data."""
        window = window or self.grid.full_window()
        raw = read_bands(self.sources, self.grid, window)
        return to_reflectance(raw, self.bands, self.radiometry, nodata=None)

    def reads_cheaply_at(self, resolution: float, *, exact: bool = True) -> bool:
        """Whether every band can be read at ``resolution`` (coarser than the grid) without
        decoding finer pixels: its file is that coarse already, or has an overview whose
        decimation divides the factor: one that holds block means (average-built COG
        overviews) or, unless ``exact``, any sized like one (JPEG 2000 resolution levels,
        read inside :func:`~s2clouds.io.overviews.approximate_overviews`); see
        :meth:`~s2clouds.io.overviews.FileLevels.reads_cheaply_at`. A band without stored
        levels (held in memory) never reads cheaply."""
        for source in self.sources:
            levels = source.levels()
            if levels is None or not levels.reads_cheaply_at(resolution, exact=exact):
                return False
        return True

    def read_coarse(self, window: Window, factor: int) -> tuple[np.ndarray, np.ndarray]:
        """Reflectance (C, h, w) float32 of ``window`` on the grid ``factor`` times coarser
        (block means, ``window.coarsened(factor)``), and where the scene has data at its own
        resolution (window.height, window.width) bool: every band has data in the coarse
        pixel, and the band with the finest file has data in the pixel itself."""
        coarse = replace(self, grid=self.grid.at_resolution(self.grid.resolution * factor))
        image = coarse.read(window.coarsened(factor))
        rows = np.arange(window.row, window.row + window.height) // factor - window.row // factor
        cols = np.arange(window.col, window.col + window.width) // factor - window.col // factor
        valid = np.all(np.isfinite(image), axis=0)[np.ix_(rows, cols)]
        finest = self._finest_band()
        if finest is None:  # one band of a pixel-interleaved file costs as much as all
            return image, valid
        return image, valid & np.isfinite(self.select([finest]).read(window)[0])

    def _finest_band(self) -> str | None:
        """The band whose file has the finest pixels and can be read alone (a single-band
        or band-interleaved file), or None."""
        best: tuple[float, str] | None = None
        for source in self.sources:
            levels = source.levels()
            if levels is None or not levels.reads_alone:
                continue
            if best is None or levels.resolution < best[0]:
                best = (levels.resolution, source.band)
        return None if best is None else best[1]

    def overview(self, max_size: int = 1024) -> tuple[np.ndarray, float]:
        """Reflectance ``(C, h, w)`` float32 of the whole scene on a grid at most
        ``max_size`` pixels on its long side, and that grid's resolution (m)."""
        factor = max(1, math.ceil(max(self.grid.shape) / max_size))
        if factor == 1:
            return self.read(), self.grid.resolution
        grid = self.grid.at_resolution(self.grid.resolution * factor)
        return replace(self, grid=grid).read(), grid.resolution

    def check_radiometry(self, *, strict: bool = True) -> None:
        """Read a central sample and refuse bands that do not look like reflectance (see
        :func:`~s2clouds.radiometry.check_bands`), a level that contradicts the radiometry
        (:func:`~s2clouds.radiometry.check_level`), and a small scene without a valid pixel.
        Errors name the scene's path."""
        size = min(256, self.grid.height, self.grid.width)
        window = Window((self.grid.height - size) // 2, (self.grid.width - size) // 2, size, size)
        sample = self.read(window)
        where = self.meta.get("path", self.product_id)
        try:
            check_bands(sample, self.bands, strict=strict)
            check_level(sample, self.bands, self.level)
        except RadiometryError as exc:
            raise RadiometryError(f"{where}: {exc}") from exc
        if window == self.grid.full_window() and not np.isfinite(sample).any():
            raise RadiometryError(
                f"{where} holds no valid pixel (every value is no data, e.g. 0); give a scene "
                "with data"
            )
