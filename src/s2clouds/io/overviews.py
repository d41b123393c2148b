"""Which coarser levels of a raster file hold what: the overview heuristics.

A read onto a grid coarser than a file (a model that works at 20 m on 10 m bands) can skip
the fine pixels when the file has a level at that decimation. :func:`file_levels` reads,
once per file, which overviews hold block means of the full resolution (average-built COG
overviews) and which are only sized like one (nearest-built overviews, JPEG 2000 resolution
levels); :func:`overview_for` picks the level for one read. Inside
:func:`approximate_overviews` any level sized like a block mean counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from s2clouds.io.grid import Window
from s2clouds.io.remote import open_raster, read_failure

#: overview pixels (a side) compared with the block means of the full resolution
OVERVIEW_SAMPLE = 32


@dataclass(frozen=True)
class FileLevels:
    """The resolution levels of one band of a raster file.

    ``resolution``: the file's pixel size (CRS units). ``means``: its overviews that hold
    block means of its pixels, ``((decimation, overview level), ...)``. ``sized``: every
    overview sized like a block mean (ceil(size / decimation), as GDAL sizes them), those in
    ``means`` included. ``reads_alone``: whether the band decodes without the file's other
    bands (one band, or band-interleaved).
    """

    resolution: float
    means: tuple[tuple[int, int], ...]
    sized: tuple[tuple[int, int], ...]
    reads_alone: bool

    def usable(self, *, exact: bool = True) -> tuple[tuple[int, int], ...]:
        """The overviews a read may use: ``means`` when ``exact``, else ``sized``."""
        return self.means if exact else self.sized

    def reads_cheaply_at(self, resolution: float, *, exact: bool = True) -> bool:
        """Whether the band can be read at ``resolution`` without decoding finer pixels: the
        file is that coarse already, or has a usable overview (:meth:`usable`) whose
        decimation divides the factor."""
        factor = resolution / self.resolution
        if factor <= 1 + 1e-6:
            return True
        if abs(factor - round(factor)) > 1e-6:
            return False
        return any(round(factor) % decimation == 0 for decimation, _ in self.usable(exact=exact))


def overview_factors(path: str, index: int = 1, sign: str | None = None) -> dict[int, int]:
    """Overviews of band ``index`` of ``path`` that hold block means of its pixels, as
    ``{decimation factor: overview level}`` (e.g. ``{2: 0, 4: 1}`` for a COG with average
    overviews); empty when it has none. Read once per file."""
    return dict(file_levels(path, index, sign).means)


_approximate = contextvars.ContextVar("s2clouds_approximate_overviews", default=False)


@contextlib.contextmanager
def approximate_overviews() -> Iterator[None]:
    """Reads inside may use any overview sized like a block mean (JPEG 2000 resolution
    levels, nearest-built overviews), not only those that hold block means: for maps that
    need no exact means, such as where a scene's clouds can cast shadow."""
    token = _approximate.set(True)
    try:
        yield
    finally:
        _approximate.reset(token)


@functools.lru_cache(maxsize=256)
def file_levels(path: str, index: int = 1, sign: str | None = None) -> FileLevels:
    """The :class:`FileLevels` of band ``index`` of ``path``, read once per file.

    An overview holds block means when it equals the block means of a sample
    (:func:`_holds_block_means`). Overviews built by nearest neighbour, and JPEG 2000
    resolution levels (wavelet low-passes: a few percent off at edges, enough to move a
    class boundary), are only ``sized``. JPEG 2000 levels are known to be such low-passes
    and are not sampled (sampling decodes a codestream tile per level, in every process
    that reads the file)."""
    import rasterio

    found, sized = [], []
    try:
        with open_raster(path, sign) as ds:
            factors = ds.overviews(index)
            height, width = ds.height, ds.width
            resolution = abs(ds.transform.a)
            wavelet = str(ds.driver).upper().startswith("JP2")
            alone = ds.count == 1 or ds.interleaving == rasterio.enums.Interleaving.band
            for level, factor in enumerate(factors):
                with open_raster(path, sign, overview_level=level) as ov:
                    exact = (ov.height, ov.width) == (-(-height // factor), -(-width // factor))
                    if factor > 1 and exact:
                        sized.append((int(factor), level))
                        if not wavelet and _holds_block_means(ds, ov, index, factor):
                            found.append((int(factor), level))
    except rasterio.errors.RasterioIOError as exc:
        raise read_failure(path, exc, sign) from exc
    return FileLevels(resolution, tuple(found), tuple(sized), bool(alone))


def _holds_block_means(ds: Any, ov: Any, index: int, factor: int) -> bool:
    """Whether overview ``ov`` of ``ds`` (decimation ``factor``) holds the means of
    ``factor`` x ``factor`` blocks, to its data type's rounding (half a unit per halving),
    on a sample at the centre where every pixel has data; False when the sample has no
    such block."""
    side = min(OVERVIEW_SAMPLE, ov.height, ov.width)
    sample = Window((ov.height - side) // 2, (ov.width - side) // 2, side, side)
    coarse = ov.read(index, window=sample.to_rasterio()).astype(np.float64)
    fine = ds.read(index, window=sample.to_rasterio(scale=factor)).astype(np.float64)
    blocks = fine.reshape(side, factor, side, factor)
    nodata = ds.nodata
    whole = np.ones((side, side), bool) if nodata is None else np.all(blocks != nodata, axis=(1, 3))
    if not whole.any():
        return False
    means = blocks.mean(axis=(1, 3))
    integer = np.issubdtype(np.dtype(ds.dtypes[index - 1]), np.integer)
    # GDAL builds each level from the one before: up to half a unit of rounding per level
    rounding = 0.5 * max(1.0, math.log2(factor)) + 1e-6
    tolerance = rounding if integer else 1e-4 * max(1.0, float(np.abs(means[whole]).max()))
    return bool(np.abs(coarse[whole] - means[whole]).max() <= tolerance)


def overview_for(
    path: str, sign: str | None, index: int, factor: int, row: float, col: float
) -> tuple[int, int] | None:
    """``(decimation, overview level)`` of the coarsest overview of ``path`` that holds block
    means (any sized like one inside :func:`approximate_overviews`), whose decimation
    divides ``factor`` and on whose grid a read starting at file pixel ``(row, col)``
    starts, or None (read the full resolution then)."""
    if abs(row - round(row)) > 1e-6 or abs(col - round(col)) > 1e-6:
        return None
    usable = file_levels(path, index, sign).usable(exact=not _approximate.get())
    for decimation, level in sorted(usable, reverse=True):
        if factor % decimation == 0 and round(row) % decimation == 0 == round(col) % decimation:
            return decimation, level
    return None
