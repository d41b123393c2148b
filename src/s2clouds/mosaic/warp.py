"""The target grid of a composite, and reading any input onto it.

Default grid: the first acquisition's CRS (in canonical order) at the finest input resolution
(converted into that CRS), covering the union of the inputs' footprints, with its pixel
corners on the first input's pixel corners when that input is in the same CRS and resolution
(so it is not resampled at all). A :class:`GridRequest` chooses CRS and resolution
(``crs="EPSG:32633", resolution=10``), copies a raster's grid (``like="REF.tif"``) or clips
the extent (``bounds=(W, S, E, N)`` in the target CRS).

:class:`WarpedBand` reads one band of a file onto any grid: a plain windowed read when the
file's pixels are the grid's pixels (same CRS and resolution, whole-pixel offset), else a
GDAL warp (``WarpedVRT``, bilinear for reflectance) of only the source pixels that the window
needs. Reading stays lazy: memory follows the window, never the scene.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from affine import Affine

from s2clouds.errors import CRSMismatchError, OptionError, SceneFormatError
from s2clouds.io.bands import BandSource, OnFile, RasterBand
from s2clouds.io.grid import Grid, Window
from s2clouds.io.headers import raster_info
from s2clouds.io.limits import (
    MAX_OUTPUT_PIXELS,
    MIN_UNION_COVER,
    check_grid_size,
    check_pixel_size,
)
from s2clouds.io.remote import gdal_reason, open_raster
from s2clouds.io.scene import Scene
from s2clouds.mosaic.inputs import Acquisition, Rejected

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class GridRequest:
    """How the user asked for the target grid (all optional): ``crs`` and ``resolution``
    (CRS units per pixel), ``like`` (a raster whose grid is copied), ``bounds`` (W, S, E, N in
    the target CRS); ``max_pixels``: the largest grid made. A resolution that is not a
    positive finite number, or bounds that are not finite with W < E and S < N, raise
    :class:`~s2clouds.errors.OptionError`."""

    crs: str | None = None
    resolution: float | None = None
    like: str | None = None
    bounds: Bounds | None = None
    max_pixels: int = MAX_OUTPUT_PIXELS

    def __post_init__(self) -> None:
        res = self.resolution
        if res is not None and not (math.isfinite(res) and res > 0):
            raise OptionError(
                f"the grid's resolution {res!r} is not a positive number of CRS units per pixel",
                param="grid",
            )
        if self.bounds is not None:
            check_bounds(self.bounds)


def check_bounds(bounds: Bounds) -> None:
    """Refuse ``bounds`` (W, S, E, N) that are not finite, or not W < E and S < N:
    :class:`~s2clouds.errors.OptionError` naming ``bounds=``."""
    west, south, east, north = bounds
    if not all(math.isfinite(v) for v in bounds):
        raise OptionError(
            f"bounds={_fmt(bounds)}: every bound must be a finite number", param="bounds"
        )
    if not (west < east and south < north):
        raise OptionError(
            f"bounds={_fmt(bounds)}: west must be < east and south < north", param="bounds"
        )


def grid_bounds(grid: Grid) -> Bounds:
    t = grid.transform
    return (t.c, t.f + t.e * grid.height, t.c + t.a * grid.width, t.f)


def footprint(scene: Scene, crs: Any) -> Bounds:
    """The scene's bounds in ``crs``."""
    from rasterio.warp import transform_bounds

    bounds = grid_bounds(scene.grid)
    if scene.grid.crs is None or crs is None or scene.grid.crs == crs:
        return bounds
    west, south, east, north = transform_bounds(scene.grid.crs, crs, *bounds, densify_pts=21)
    return float(west), float(south), float(east), float(north)


def resolution_in(scene: Scene, crs: Any) -> float:
    """The scene's pixel size expressed in ``crs`` units."""
    if scene.grid.crs is None or crs is None or scene.grid.crs == crs:
        return scene.grid.resolution
    from rasterio.warp import calculate_default_transform

    transform, _, _ = calculate_default_transform(
        scene.grid.crs, crs, scene.grid.width, scene.grid.height, *grid_bounds(scene.grid)
    )
    return float(min(abs(transform.a), abs(transform.e)))


def _intersects(a: Bounds, b: Bounds) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def target_grid(acquisitions: Sequence[Acquisition], request: GridRequest) -> Grid:
    """The grid the composite is written on (see the module docstring)."""
    if request.like is not None:
        grid = raster_info(request.like).grid
        if request.bounds is not None or request.crs is not None:
            raise OptionError(
                "like= copies a whole grid; do not combine it with grid= or bounds=",
                param="like",
            )
        check_grid_size(grid.height, grid.width, request.max_pixels, f"like={request.like}")
        check_pixel_size(grid, f"like={request.like}")
        return grid
    first = acquisitions[0].scene.grid
    crs = request.crs if request.crs is not None else first.crs
    if crs is not None and not hasattr(crs, "to_epsg"):
        from rasterio.crs import CRS

        try:
            crs = CRS.from_user_input(crs)
        except Exception as exc:  # rasterio's CRSError
            raise OptionError(f"unknown CRS {request.crs!r}: {exc}", param="grid") from exc
    resolution = request.resolution or min(resolution_in(a.scene, crs) for a in acquisitions)
    if request.bounds is not None:
        west, south, east, north = request.bounds
        what = f"bounds={_fmt(request.bounds)}"
    else:
        prints = [footprint(a.scene, crs) for a in acquisitions]
        west, south = min(p[0] for p in prints), min(p[1] for p in prints)
        east, north = max(p[2] for p in prints), max(p[3] for p in prints)
        what = f"the union of the {len(prints)} inputs' footprints"
        check_union_cover(prints, (west, south, east, north), crs)
    if request.resolution is not None:
        what += f" at resolution {resolution:g} (grid=)"
    height, width = (north - south) / resolution, (east - west) / resolution
    check_grid_size(height, width, request.max_pixels, what)
    # pixel corners on the first input's corners when it is on this CRS and resolution
    if first.crs == crs and math.isclose(first.resolution, resolution, rel_tol=1e-9):
        x0, y0 = first.transform.c, first.transform.f
    else:
        x0, y0 = 0.0, 0.0
    col0 = math.floor((west - x0) / resolution + 1e-6)
    col1 = math.ceil((east - x0) / resolution - 1e-6)
    row0 = math.floor((y0 - north) / resolution + 1e-6)
    row1 = math.ceil((y0 - south) / resolution - 1e-6)
    transform = Affine(
        resolution, 0, x0 + col0 * resolution, 0, -resolution, y0 - row0 * resolution
    )
    grid = Grid(crs, transform, max(1, row1 - row0), max(1, col1 - col0))
    check_pixel_size(grid, f"the target grid ({crs}, {resolution:g} per pixel)")
    return grid


def check_union_cover(prints: Sequence[Bounds], union: Bounds, crs: Any) -> None:
    """Refuse a union of footprints that the footprints cover less than
    :data:`~s2clouds.io.limits.MIN_UNION_COVER` of (inputs far apart, on two continents):
    its windows would be nearly all empty. ``bounds`` chooses the extent instead."""
    area = (union[2] - union[0]) * (union[3] - union[1])
    covered = sum((p[2] - p[0]) * (p[3] - p[1]) for p in prints)
    if area > 0 and covered < MIN_UNION_COVER * area:
        raise SceneFormatError(
            f"the {len(prints)} inputs are far apart: together they cover "
            f"{100 * covered / area:.2g} % of their union ({_fmt(union)} in {crs}), which "
            "would be nearly all empty windows; composite each area on its own, or give "
            "bounds= of the extent you want"
        )


def check_overlap(
    acquisitions: Sequence[Acquisition], grid: Grid, *, drop: bool
) -> tuple[list[Acquisition], list[Rejected]]:
    """Acquisitions that overlap ``grid``; one that does not raises :class:`CRSMismatchError`
    naming it, unless ``drop`` (then it is rejected). None overlapping always raises."""
    keep, rejected = [], []
    target = grid_bounds(grid)
    for acq in acquisitions:
        if _intersects(footprint(acq.scene, grid.crs), target):
            keep.append(acq)
            continue
        reason = (
            f"{acq.path} does not overlap the target grid (bounds {_fmt(target)} in {grid.crs})"
        )
        if not drop:
            raise CRSMismatchError(
                f"{reason}; give bounds= or grid= that cover it, or drop_incomplete=True to "
                "leave it out"
            )
        rejected.append(Rejected(acq.path, reason))
    if not keep:
        raise CRSMismatchError(
            f"no input overlaps the target grid (bounds {_fmt(target)} in {grid.crs}); check "
            "bounds=/grid=/like="
        )
    return keep, rejected


def _fmt(bounds: Bounds) -> str:
    return ", ".join(f"{v:.6g}" for v in bounds)


@dataclass(frozen=True)
class WarpedBand(OnFile):
    """One band of a raster file, read onto any grid (see the module docstring).

    Values are as stored (float32, NaN where the file has ``nodata`` or no pixel). A
    :class:`~s2clouds.io.bands.BandSource` that is read alone and has no stored levels (a
    warp decodes the full resolution)."""

    band: str
    path: str
    index: int = 1
    nodata: float | None = 0
    resampling: str = "bilinear"
    sign: str | None = None  # signing hook of a remote href (see s2clouds.io.remote)

    @property
    def group(self) -> None:
        return None

    def levels(self) -> None:
        return None

    def file_band(self) -> RasterBand:
        return RasterBand(self.band, self.path, self.index, self.nodata, self.sign)

    def read_group(self, group: Sequence[WarpedBand], grid: Grid, window: Window) -> np.ndarray:
        return np.stack([source.read(grid, window) for source in group])

    def read(self, grid: Grid, window: Window) -> np.ndarray:
        import rasterio
        from rasterio._err import CPLE_BaseError
        from rasterio.enums import Resampling

        try:
            with open_raster(self.path, self.sign) as ds:
                offset = _aligned_offset(ds, grid)
                if offset is not None:
                    src = Window(
                        window.row + offset[0], window.col + offset[1], window.height, window.width
                    )
                    fill = self.nodata if self.nodata is not None else 0
                    inside = (
                        src.row >= 0
                        and src.col >= 0
                        and src.row + src.height <= ds.height
                        and src.col + src.width <= ds.width
                    )  # a boundless read builds a VRT each time: only where needed
                    data = ds.read(
                        self.index, window=src.to_rasterio(), boundless=not inside, fill_value=fill
                    )
                    out = data.astype(np.float32)
                    if self.nodata is not None:
                        out[data == self.nodata] = np.nan
                    out[_outside(ds, src)] = np.nan
                    return out
                from rasterio.vrt import WarpedVRT

                nodata = (
                    self.nodata
                    if self.nodata is not None
                    else (np.nan if np.dtype(ds.dtypes[0]).kind == "f" else 0)
                )
                with WarpedVRT(
                    ds,
                    crs=grid.crs,
                    transform=grid.transform,
                    width=grid.width,
                    height=grid.height,
                    resampling=getattr(Resampling, self.resampling),
                    src_nodata=nodata,
                    nodata=nodata,
                ) as vrt:
                    data = vrt.read(self.index, window=window.to_rasterio())
                out = data.astype(np.float32)
                if isinstance(nodata, float) and math.isnan(nodata):
                    return out
                out[data == nodata] = np.nan
                return out
        except (rasterio.errors.RasterioIOError, CPLE_BaseError) as exc:
            # a damaged tile met by a boundless read comes as GDAL's own error class
            raise SceneFormatError(
                f"cannot read {self.path} ({gdal_reason(exc)}); the file is missing or damaged"
            ) from exc


def _outside(ds: Any, src: Window) -> np.ndarray:
    """(h, w) bool: where the file window ``src`` lies outside the file ``ds``."""
    rows = np.arange(src.row, src.row + src.height)
    cols = np.arange(src.col, src.col + src.width)
    row_out = (rows < 0) | (rows >= ds.height)
    col_out = (cols < 0) | (cols >= ds.width)
    return row_out[:, None] | col_out[None, :]


def _aligned_offset(ds: Any, grid: Grid) -> tuple[int, int] | None:
    """(rows, cols) from the grid's origin to the file's when the file's pixels are the grid's
    pixels (same CRS and resolution, whole-pixel offset, north up); else None (see
    :meth:`~s2clouds.io.grid.Grid.offset_on`)."""
    return grid.offset_on(Grid(ds.crs, ds.transform, ds.height, ds.width))


def on_grid(scene: Scene, grid: Grid, resampling: str = "bilinear") -> Scene:
    """``scene`` read onto ``grid``: every band of a file becomes a :class:`WarpedBand`. An
    in-memory band must already be on ``grid``."""
    sources: list[BandSource] = []
    for source in scene.sources:
        stored = source.file_band()
        if stored is not None:
            sources.append(
                WarpedBand(
                    stored.band, stored.path, stored.index, stored.nodata, resampling, stored.sign
                )
            )
        elif scene.grid == grid:
            sources.append(source)
        else:
            raise SceneFormatError(
                f"{scene.product_id}: an in-memory band cannot be warped; write it to a GeoTIFF"
            )
    return replace(scene, sources=tuple(sources), grid=grid)
