"""Band sources: the contract every band of a :class:`~s2clouds.io.scene.Scene` meets.

A :class:`BandSource` is one band that can be read for any window of a grid, and says what
callers need to know without reading pixels: the files it reads, their data type and tags,
the coarser levels they hold, and which other sources one read serves (the bands of one
file). :class:`RasterBand` reads a band of a raster file, :class:`ArrayBand` a band held in
memory; :func:`read_bands` reads a stack of sources for one window. Code above ``io/`` asks
these questions of the protocol, never of the concrete type.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np

from s2clouds.errors import SceneFormatError
from s2clouds.io.grid import Grid, Window
from s2clouds.io.headers import raster_info
from s2clouds.io.overviews import FileLevels, file_levels, overview_for
from s2clouds.io.remote import open_raster, read_failure
from s2clouds.resample import block_mean


class BandSource(Protocol):
    """One band that can be read for any window of a grid (values as stored, float32)."""

    @property
    def band(self) -> str:
        """The canonical band name (``"B04"``)."""
        ...

    @property
    def group(self) -> Hashable | None:
        """Sources of one type with the same key (not None) are read together by one
        :meth:`read_group` (the bands of one file, which one read decodes together);
        None: this source is read alone."""
        ...

    def files(self) -> tuple[str, ...]:
        """The files (or GDAL paths, hrefs) its pixels are read from; () when held in
        memory."""
        ...

    def dtype(self) -> str:
        """The data type of the values as stored (``"uint16"``), before :meth:`read` makes
        them float32."""
        ...

    def tags(self) -> dict[str, str]:
        """The dataset tags of its file, upper-case keys; {} when it has none."""
        ...

    def levels(self) -> FileLevels | None:
        """Its file's resolution levels (which coarser reads are cheap), or None when it has
        no stored levels to read (held in memory, or resampled on the fly): then every read
        of it costs its full resolution."""
        ...

    def file_band(self) -> RasterBand | None:
        """The band of a raster file whose pixels it reads (which can then be read onto
        another grid), or None when it is held in memory."""
        ...

    def read(self, grid: Grid, window: Window) -> np.ndarray:
        """``window`` of ``grid`` (h, w) float32, values as stored, NaN = no data."""
        ...

    def read_group(self, group: Sequence[Self], grid: Grid, window: Window) -> np.ndarray:
        """``window`` of ``grid`` for each of ``group`` (this source and those of its
        :attr:`group` that follow it, in order): (k, h, w) float32."""
        ...


def read_bands(sources: Sequence[BandSource], grid: Grid, window: Window) -> np.ndarray:
    """Stack (C, h, w) float32 of ``sources`` for ``window`` of ``grid``; neighbouring
    sources of one :attr:`~BandSource.group` are read by one call."""
    layers: list[np.ndarray] = []
    i = 0
    while i < len(sources):
        source = sources[i]
        end = i + 1
        if source.group is not None:
            while (
                end < len(sources)
                and type(sources[end]) is type(source)
                and sources[end].group == source.group
            ):
                end += 1
        if end - i == 1 and source.group is None:
            layers.append(source.read(grid, window))
        else:
            layers.extend(source.read_group(sources[i:end], grid, window))
        i = end
    return np.stack(layers)


@dataclass(frozen=True)
class ArrayBand:
    """A band held in memory, already on the scene grid. ``data`` is (H, W)."""

    band: str
    data: np.ndarray

    @property
    def group(self) -> None:
        return None

    def files(self) -> tuple[str, ...]:
        return ()

    def dtype(self) -> str:
        return str(self.data.dtype)

    def tags(self) -> dict[str, str]:
        return {}

    def levels(self) -> None:
        return None

    def file_band(self) -> None:
        return None

    def read(self, grid: Grid, window: Window) -> np.ndarray:
        """``window`` of ``grid``; a coarser grid over the same extent (an overview) gets the
        nearest pixels."""
        height, width = self.data.shape
        if (height, width) == grid.shape:
            return np.asarray(self.data[window.slices], dtype=np.float32)
        if grid.height > height or grid.width > width:
            raise SceneFormatError(
                f"array band {self.band} has shape {self.data.shape}, the scene grid is {grid.shape}"
            )
        rows = _nearest_indices(window.row, window.height, height / grid.height, height)
        cols = _nearest_indices(window.col, window.width, width / grid.width, width)
        return np.asarray(self.data[np.ix_(rows, cols)], dtype=np.float32)

    def read_group(self, group: Sequence[ArrayBand], grid: Grid, window: Window) -> np.ndarray:
        return np.stack([source.read(grid, window) for source in group])


def _nearest_indices(start: int, count: int, factor: float, size: int) -> np.ndarray:
    """Indices into ``size`` fine pixels of the centres of coarse pixels ``start ..``."""
    centres = ((np.arange(start, start + count) + 0.5) * factor).astype(np.int64)
    return np.minimum(centres, size - 1)


class OnFile:
    """The members of :class:`BandSource` that a source read from one raster file answers
    from its header: ``files()``, ``dtype()`` and ``tags()`` (``path``, ``sign``: the file
    and its signing hook, set by the dataclass that mixes this in)."""

    path: str
    sign: str | None

    def files(self) -> tuple[str, ...]:
        return (self.path,)

    def dtype(self) -> str:
        return raster_info(self.path, self.sign).dtype

    def tags(self) -> dict[str, str]:
        return raster_info(self.path, self.sign).tags


@dataclass(frozen=True)
class RasterBand(OnFile):
    """A band in a raster file (``path``, 1-based ``index``), read with rasterio.

    Reads are resampled onto the requested grid: ``average`` when the grid is coarser than the
    file, ``nearest`` when it is finer. The file must share the grid's CRS and extent.
    ``nodata`` is the stored value that means "no data" (it becomes NaN). A remote ``path``
    (an http/https/s3 href) is read with HTTP range reads, signed at each open by the hook
    named ``sign`` (see :mod:`s2clouds.io.remote`). Bands of one file (same ``path``,
    ``nodata`` and ``sign``) form one :attr:`group`.
    """

    band: str
    path: str
    index: int = 1
    nodata: float | None = 0
    sign: str | None = None

    @property
    def group(self) -> tuple[str, float | None, str | None]:
        return (self.path, self.nodata, self.sign)

    def levels(self) -> FileLevels:
        return file_levels(self.path, self.index, self.sign)

    def file_band(self) -> RasterBand:
        return self

    def read(self, grid: Grid, window: Window) -> np.ndarray:
        return np.asarray(self.read_group([self], grid, window)[0])

    def read_group(self, group: Sequence[RasterBand], grid: Grid, window: Window) -> np.ndarray:
        """Every band of ``group`` (bands of this file) in one open and one read."""
        indexes = [source.index for source in group]
        return read_raster_window(self.path, indexes, self.nodata, grid, window, sign=self.sign)


def read_raster_window(
    path: str,
    indexes: Sequence[int],
    nodata: float | None,
    grid: Grid,
    window: Window,
    *,
    sign: str | None = None,
) -> np.ndarray:
    """Bands ``indexes`` (1-based) of ``path`` for ``window`` of ``grid``: (k, h, w) float32.

    One open and one read for all bands (a pixel-interleaved file decodes every band at
    each read, so reading them together matters). Coarser grids with an integer factor are
    block means that ignore no-data; other factors are resampled by GDAL (``average`` when
    coarser, ``nearest`` when finer). ``nodata`` values become NaN. Remote hrefs are opened
    by :func:`~s2clouds.io.remote.open_raster` (signed by ``sign`` now, range reads).
    """
    import rasterio

    try:
        with open_raster(path, sign) as ds:
            if ds.transform.e > 0:
                raise SceneFormatError(f"{path}: south-up rasters are not supported")
            factor = grid.resolution / abs(ds.transform.a)
            offset = _grid_offset(ds, grid)
            if factor > 1 and abs(factor - round(factor)) < 1e-6:
                row, col, height, width = window.scaled(factor)
                row, col = row + offset[0], col + offset[1]
                pixels = Window(round(row), round(col), round(height), round(width))
                overview = overview_for(path, sign, indexes[0], round(factor), row, col)
                if overview is not None:
                    return _read_overview_means(
                        path, sign, indexes, nodata, pixels, overview, round(factor)
                    )
                data = _read_padded(ds, indexes, pixels, nodata)
                return block_mean(data, round(factor), fill=np.nan)
            from rasterio.enums import Resampling

            resampling = Resampling.average if factor > 1 else Resampling.nearest
            out_shape = (len(indexes), window.height, window.width)
            src = window.to_rasterio(scale=factor, offset=offset)
            data = ds.read(list(indexes), window=src, out_shape=out_shape, resampling=resampling)
            return _as_float(data, nodata)
    except rasterio.errors.RasterioIOError as exc:
        raise read_failure(path, exc, sign) from exc


def _grid_offset(ds: Any, grid: Grid) -> tuple[float, float]:
    """(rows, cols) of the file's pixels from the file's origin to the grid's."""
    return (
        (ds.transform.f - grid.transform.f) / abs(ds.transform.a),
        (grid.transform.c - ds.transform.c) / abs(ds.transform.a),
    )


def _read_padded(
    ds: Any, indexes: Sequence[int], pixels: Window, nodata: float | None
) -> np.ndarray:
    """Bands ``indexes`` of ``pixels`` (a window of ``ds`` that may reach past its edges) as
    (k, h, w) float32, NaN where the window lies outside the file.

    A coarse grid rounds its size up (511 px at 10 m are 256 px at 20 m), so the last coarse
    pixels cover fine pixels that do not exist; they are averaged over those that do.
    """
    row, col, height, width = pixels.row, pixels.col, pixels.height, pixels.width
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + height, ds.height), min(col + width, ds.width)
    out = np.full((len(indexes), height, width), np.nan, np.float32)
    if bottom > top and right > left:
        inside = Window(top, left, bottom - top, right - left)
        data = _as_float(ds.read(list(indexes), window=inside.to_rasterio()), nodata)
        out[:, top - row : bottom - row, left - col : right - col] = data
    return out


def _read_overview_means(
    path: str,
    sign: str | None,
    indexes: Sequence[int],
    nodata: float | None,
    pixels: Window,
    overview: tuple[int, int],
    factor: int,
) -> np.ndarray:
    """Block means over ``factor`` x ``factor`` pixels of the file window ``pixels``, read
    from an ``overview`` ``(decimation, level)`` (which holds block means over
    ``decimation`` px, rounded to the stored data type; ``pixels`` starts on its grid) and
    averaged over the rest."""
    decimation, level = overview
    with open_raster(path, sign, overview_level=level) as ov:
        data = _read_padded(ov, indexes, pixels.coarsened(decimation), nodata)
    return data if factor == decimation else block_mean(data, factor // decimation, fill=np.nan)


def _as_float(data: np.ndarray, nodata: float | None) -> np.ndarray:
    out = data.astype(np.float32, copy=False)
    if nodata is not None:
        out[data == nodata] = np.nan
    return out
