"""The pixel grid a scene is read onto, and windows over it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine

if TYPE_CHECKING:
    from rasterio.windows import Window as RioWindow


@dataclass(frozen=True)
class Window:
    """A rectangle of pixels ``[row, row + height) x [col, col + width)`` on a grid."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices for indexing a ``(..., H, W)`` array."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    def within(self, outer: Window) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of this window inside an ``outer`` window that contains it
        (e.g. a block inside the block grown by a model's halo)."""
        row, col = self.row - outer.row, self.col - outer.col
        return slice(row, row + self.height), slice(col, col + self.width)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def coarsened(self, factor: int) -> Window:
        """The window of a grid ``factor`` times coarser that covers this one (its size
        rounded up: a partial coarse pixel at the bottom or right is included)."""
        row, col = self.row // factor, self.col // factor
        bottom = -(-(self.row + self.height) // factor)
        right = -(-(self.col + self.width) // factor)
        return Window(row, col, bottom - row, right - col)

    def scaled(self, factor: float) -> tuple[float, float, float, float]:
        """The same area in a grid whose pixels are ``factor`` times smaller."""
        return (self.row * factor, self.col * factor, self.height * factor, self.width * factor)

    def to_rasterio(
        self, scale: float = 1.0, offset: tuple[float, float] = (0.0, 0.0)
    ) -> RioWindow:
        """This window as rasterio's ``Window(col_off, row_off, width, height)``: columns
        first, where s2clouds' :class:`Window` puts rows first. The one place s2clouds makes
        a rasterio window (modules that need its type import it as ``RioWindow``).

        ``scale`` and ``offset`` place it in the pixels of a raster other than the window's
        grid: pixels ``scale`` times smaller (a window of a 20 m grid on a 10 m file: 2), and
        the grid's origin ``offset`` (rows, cols) of those pixels from the raster's. The
        result may then be fractional (GDAL resamples such a read)."""
        from rasterio.windows import Window as RioWindow

        row: float = self.row
        col: float = self.col
        height: float = self.height
        width: float = self.width
        if scale != 1:
            row, col, height, width = self.scaled(scale)
        if offset != (0, 0):
            row, col = row + offset[0], col + offset[1]
        return RioWindow(col, row, width, height)


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, affine transform (pixel -> map), size in pixels.

    ``crs`` is anything rasterio accepts (a ``rasterio.crs.CRS`` in practice) or None for
    arrays without georeference; ``transform`` is the identity in that case.
    """

    crs: Any
    transform: Affine
    height: int
    width: int

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (metres for UTM), from the transform."""
        return float(abs(self.transform.a))

    @property
    def metres_per_pixel(self) -> float:
        """Pixel size in metres: :attr:`resolution`, or for a geographic CRS (e.g. EPSG:4326
        exports) the geometric mean of the pixel's east-west and north-south sizes at the
        grid's centre latitude."""
        if self.crs is None or not getattr(self.crs, "is_geographic", False):
            return self.resolution
        latitude = self.transform.f + self.transform.e * self.height / 2
        east = abs(self.transform.a) * max(math.cos(math.radians(latitude)), 0.01)
        return math.sqrt(east * abs(self.transform.e)) * 111_320.0

    @property
    def pixel_size_text(self) -> str:
        """The pixel size for people: ``"10 m"``, or for a geographic CRS the degrees with the
        metres they span (``"0.0000898315 deg (about 8.62 m)"``; the metres are
        :attr:`metres_per_pixel`)."""
        if self.crs is not None and getattr(self.crs, "is_geographic", False):
            degrees = np.format_float_positional(self.resolution, precision=6, fractional=False)
            return f"{degrees} deg (about {self.metres_per_pixel:.3g} m)"
        return f"{self.resolution:g} m"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def full_window(self) -> Window:
        return Window(0, 0, self.height, self.width)

    def window_transform(self, window: Window) -> Affine:
        """Transform of the sub-grid that ``window`` covers."""
        return self.transform @ Affine.translation(window.col, window.row)

    def at_resolution(self, resolution: float) -> Grid:
        """The grid covering the same extent at ``resolution`` (CRS units), from the same
        upper-left corner. Sizes are rounded up: the last row and column may reach past the
        extent, so that the grid covers every pixel of it (5 px at 10 m are 3 px at 20 m;
        511 px at 10 m are 86 px at 60 m)."""
        factor = self.resolution / resolution
        t = self.transform
        new = Affine(
            resolution * (1 if t.a > 0 else -1),
            t.b,
            t.c,
            t.d,
            resolution * (1 if t.e > 0 else -1),
            t.f,
        )
        return Grid(self.crs, new, covering(self.height, factor), covering(self.width, factor))

    def at_metres(self, metres: float) -> Grid:
        """The grid covering the same extent with pixels ``metres`` wide: :meth:`at_resolution`
        in a projected CRS; in a geographic CRS (degrees, e.g. EPSG:4326) both pixel sides
        are scaled by :attr:`metres_per_pixel` / ``metres``, so that 10 m stays 10 m and
        is never taken as 10 degrees."""
        if self.crs is None or not getattr(self.crs, "is_geographic", False):
            return self.at_resolution(metres)
        factor = self.metres_per_pixel / metres
        t = self.transform
        new = Affine(t.a / factor, t.b, t.c, t.d, t.e / factor, t.f)
        return Grid(self.crs, new, covering(self.height, factor), covering(self.width, factor))

    def offset_on(self, target: Grid, *, exact: bool = True) -> tuple[int, int] | None:
        """(rows, cols) of this grid's upper-left corner on the pixels of ``target``: the one
        way s2clouds puts a grid on another (a band file on a composite's grid, a date on a
        series' grid). None when they differ in CRS or either is rotated; with ``exact``
        also unless both have the same pixel size and the corner lies on a pixel corner of
        ``target`` (to 1e-6 px), so that a window of ``target`` is a plain window of this
        grid. Without it, the nearest pixel (for grids brought to one resolution first)."""
        t, g = self.transform, target.transform
        if self.crs != target.crs or t.b or t.d or g.b or g.d:
            return None
        cols, rows = (t.c - g.c) / g.a, (t.f - g.f) / g.e
        if exact:
            same = math.isclose(t.a, g.a, rel_tol=1e-9) and math.isclose(t.e, g.e, rel_tol=1e-9)
            if not same or abs(cols - round(cols)) > 1e-6 or abs(rows - round(rows)) > 1e-6:
                return None
        return round(rows), round(cols)

    def windows(self, size: int) -> Iterator[Window]:
        """Non-overlapping windows of at most ``size`` x ``size`` covering the grid, row-major."""
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield Window(row, col, min(size, self.height - row), min(size, self.width - col))


def covering(pixels: int, factor: float) -> int:
    """Pixels of a grid ``factor`` times finer (``factor`` < 1: coarser) that cover
    ``pixels`` whole: rounded up, to a millionth of a pixel (float noise in exact ratios such
    as 10980 px x 10 / 60 does not add a pixel), at least 1."""
    return max(1, math.ceil(pixels * factor - 1e-6))


@dataclass(frozen=True)
class CoarseMask:
    """A boolean map of a whole grid held at a coarser resolution (``factor`` pixels of the
    grid per map pixel, same upper-left corner), bit-packed so that it travels cheaply to
    cluster workers. Made from a (h, w) bool array by :meth:`of`."""

    bits: np.ndarray
    shape: tuple[int, int]
    factor: int

    @classmethod
    def of(cls, data: np.ndarray, factor: int) -> CoarseMask:
        """The map of ``data`` (h, w) bool, each of its pixels ``factor`` grid pixels wide."""
        return cls(
            np.packbits(np.asarray(data, dtype=bool)), (data.shape[0], data.shape[1]), int(factor)
        )

    @property
    def data(self) -> np.ndarray:
        """The map (h, w) bool at its own resolution."""
        return self._rows(0, self.shape[0])

    def _rows(self, first: int, stop: int) -> np.ndarray:
        """Map rows ``first`` to ``stop`` (stop - first, w) bool, unpacking only their bits."""
        width = self.shape[1]
        start, end = first * width, stop * width
        bits = np.unpackbits(self.bits[start // 8 : -(-end // 8)])
        return bits[start % 8 : start % 8 + end - start].astype(bool).reshape(-1, width)

    def window(self, window: Window) -> np.ndarray:
        """(window.height, window.width) bool: the map at grid resolution over ``window``
        (nearest map pixel; pixels past the map's edges take its first or last row or
        column)."""
        last_row, last_col = self.shape[0] - 1, self.shape[1] - 1
        rows = np.clip(
            np.arange(window.row, window.row + window.height) // self.factor, 0, last_row
        )
        cols = np.clip(np.arange(window.col, window.col + window.width) // self.factor, 0, last_col)
        band = self._rows(int(rows[0]), int(rows[-1]) + 1)
        return np.asarray(band[np.ix_(rows - rows[0], cols)])
