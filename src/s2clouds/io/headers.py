"""Raster headers: what s2clouds needs from a file's header (:func:`raster_info`, read once per
file), and the one grid that rasters of a tile at several resolutions share
(:func:`shared_grid`, :func:`common_grid`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from s2clouds.errors import CRSMismatchError, SceneFormatError
from s2clouds.io.grid import Grid
from s2clouds.io.limits import check_pixel_size, check_regular_file
from s2clouds.io.remote import open_raster


@dataclass(frozen=True)
class RasterInfo:
    """What s2clouds needs from a raster's header, read once per file."""

    path: str
    grid: Grid
    count: int
    dtype: str
    nodata: float | None
    descriptions: tuple[str | None, ...]
    tags: dict[str, str]

    @property
    def nodata_or_zero(self) -> float:
        """Declared no-data value, else 0 (Sentinel-2's NODATA special value)."""
        return self.nodata if self.nodata is not None else 0.0


def raster_info(path: str | Path, sign: str | None = None) -> RasterInfo:
    """Open ``path`` once and read its grid, band count, dtype, no-data, names and tags
    (a remote href: signed by ``sign`` and read by range requests)."""
    import rasterio

    check_regular_file(path)
    try:
        with open_raster(str(path), sign) as ds:
            return RasterInfo(
                path=str(path),
                grid=Grid(ds.crs, ds.transform, ds.height, ds.width),
                count=ds.count,
                dtype=ds.dtypes[0],
                nodata=ds.nodata,
                descriptions=tuple(ds.descriptions),
                tags={k.upper(): v for k, v in ds.tags().items()},
            )
    except rasterio.errors.RasterioIOError as exc:
        raise SceneFormatError(
            f"cannot open {path}: {exc}; the file is damaged or not a raster"
        ) from exc


def common_grid(paths: Sequence[str], resolution: float | None, sign: str | None = None) -> Grid:
    """The grid shared by rasters at different resolutions, at ``resolution`` (finest if None).

    Raises :class:`CRSMismatchError` when the files differ in CRS or extent. Remote hrefs
    are signed by ``sign`` at each open.
    """
    return shared_grid([raster_info(p, sign) for p in paths], resolution)


def _extent(grid: Grid) -> tuple[float, float, float, float]:
    """Upper-left corner and size in CRS units."""
    return (
        grid.transform.c,
        grid.transform.f,
        grid.width * grid.resolution,
        grid.height * grid.resolution,
    )


def shared_grid(infos: Sequence[RasterInfo], resolution: float | None) -> Grid:
    """The grid at ``resolution`` metres (None: the finest) covering rasters that share a
    CRS and area; :class:`CRSMismatchError` when they do not, :class:`SceneFormatError`
    when its pixels are far from Sentinel-2's (see
    :func:`~s2clouds.io.limits.check_pixel_size`)."""
    finest_info = min(infos, key=lambda info: info.grid.resolution)
    finest = finest_info.grid
    for info in infos:
        if info.grid.crs != finest.crs:
            raise CRSMismatchError(
                f"{info.path} is in {info.grid.crs}, other bands in {finest.crs}; reproject the "
                "bands to one CRS first (e.g. gdalwarp -t_srs)"
            )
        if not _same_area(info.grid, finest):
            x, y, w, h = _extent(info.grid)
            fx, fy, fw, fh = _extent(finest)
            raise CRSMismatchError(
                f"{info.path} covers another area than {finest_info.path} (corner {x:g}, {y:g} "
                f"and {w:g} x {h:g} m vs {fx:g}, {fy:g} and {fw:g} x {fh:g} m); give bands of "
                "one tile on one grid (e.g. gdalwarp -te with the same bounds)"
            )
    grid = finest if resolution is None else finest.at_metres(resolution)
    check_pixel_size(grid, finest_info.path)
    return grid


def _same_area(grid: Grid, finest: Grid) -> bool:
    """Whether ``grid`` covers the area of ``finest``, the finest band's grid: the same upper
    left corner (to 1 % of a pixel), and a size that differs by less than one of its own
    pixels, so a band at the finest resolution matches exactly (one pixel off would be
    stretched), and a coarser band may end part of a pixel past a tile whose size is not a
    multiple of the ratio (511 px at 10 m, 256 px at 20 m)."""
    x, y, width, height = _extent(grid)
    fx, fy, f_width, f_height = _extent(finest)
    corner = max(abs(x - fx), abs(y - fy)) <= 0.01 * grid.resolution
    size = max(abs(width - f_width), abs(height - f_height)) < 0.99 * grid.resolution
    return corner and size
