"""Scene types: lazily read band stacks on one grid, with their radiometry and sun angles.

A :class:`Scene` never holds a whole tile in memory: :meth:`Scene.read` reads one window of
every band (:class:`RasterBand` from files, :class:`ArrayBand` from memory), resampled onto
the scene grid, and converts it to reflectance. This module also reads raster headers
(:func:`raster_info`, :func:`common_grid`) and sun angles from tags; the openers of every
format are in :mod:`s2clouds.io.scenes`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError, CRSMismatchError, RadiometryError, SceneFormatError
from s2clouds.io.grid import Grid, Window
from s2clouds.io.limits import check_pixel_size, check_regular_file
from s2clouds.io.remote import open_raster, read_failure
from s2clouds.radiometry import Radiometry, check_bands, check_level, to_reflectance
from s2clouds.resample import block_mean


@dataclass(frozen=True)
class SunAngles:
    """Mean solar and viewing angles of a scene, in degrees (azimuth clockwise from north)."""

    sun_zenith: float
    sun_azimuth: float
    view_zenith: float | None = None
    view_azimuth: float | None = None
    source: str = "metadata"

    def __post_init__(self) -> None:
        """Refuse angles that no Sentinel-2 acquisition has (the sun below the horizon, NaN)."""
        limits = {
            "sun zenith": (self.sun_zenith, 0, 90),
            "sun azimuth": (self.sun_azimuth, -360, 360),
        }
        for name, (value, low, high) in limits.items():
            if not low <= value <= high:  # also refuses NaN
                raise SceneFormatError(
                    f"{name} angle {value!r} from {self.source} is outside {low} to {high} "
                    "degrees; fix or remove the angles in the metadata"
                )


def sun_angles(zenith: Any, azimuth: Any, source: str) -> SunAngles:
    """:class:`SunAngles` from metadata values (numbers or text); :class:`SceneFormatError`
    naming ``source`` when they are not numbers, or not possible angles."""
    try:
        return SunAngles(float(zenith), float(azimuth), source=source)
    except (TypeError, ValueError) as exc:
        raise SceneFormatError(
            f"sun angles from {source} are {zenith!r} and {azimuth!r}, not numbers; fix or "
            "remove them in the metadata"
        ) from exc


class BandSource(Protocol):
    """One band that can be read for any window of a grid (values as stored, float32)."""

    @property
    def band(self) -> str: ...

    def read(self, grid: Grid, window: Window) -> np.ndarray: ...


@dataclass(frozen=True)
class ArrayBand:
    """A band held in memory, already on the scene grid. ``data`` is (H, W)."""

    band: str
    data: np.ndarray

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


def _nearest_indices(start: int, count: int, factor: float, size: int) -> np.ndarray:
    """Indices into ``size`` fine pixels of the centres of coarse pixels ``start ..``."""
    centres = ((np.arange(start, start + count) + 0.5) * factor).astype(np.int64)
    return np.minimum(centres, size - 1)


@dataclass(frozen=True)
class RasterBand:
    """A band in a raster file (``path``, 1-based ``index``), read with rasterio.

    Reads are resampled onto the requested grid: ``average`` when the grid is coarser than the
    file, ``nearest`` when it is finer. The file must share the grid's CRS and extent.
    ``nodata`` is the stored value that means "no data" (it becomes NaN). A remote ``path``
    (an http/https/s3 href) is read with HTTP range reads, signed at each open by the hook
    named ``sign`` (see :mod:`s2clouds.io.remote`).
    """

    band: str
    path: str
    index: int = 1
    nodata: float | None = 0
    sign: str | None = None

    def read(self, grid: Grid, window: Window) -> np.ndarray:
        return read_raster_window(
            self.path, (self.index,), self.nodata, grid, window, sign=self.sign
        )[0]


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
            src = _source_window(ds, grid, window, factor)
            if factor > 1 and abs(factor - round(factor)) < 1e-6:
                overview = _overview_for(path, sign, indexes[0], round(factor), src)
                if overview is not None:
                    return _read_overview_means(
                        path, sign, indexes, nodata, src, overview, round(factor)
                    )
                data = _read_padded(ds, indexes, src, nodata)
                return block_mean(data, round(factor), fill=np.nan)
            from rasterio.enums import Resampling

            resampling = Resampling.average if factor > 1 else Resampling.nearest
            out_shape = (len(indexes), window.height, window.width)
            data = ds.read(list(indexes), window=src, out_shape=out_shape, resampling=resampling)
            return _as_float(data, nodata)
    except rasterio.errors.RasterioIOError as exc:
        raise read_failure(path, exc, sign) from exc


def gdal_reason(exc: BaseException) -> str:
    """What GDAL said went wrong: rasterio's "Read failed. See previous exception" errors
    keep the GDAL message in their cause."""
    return str(exc.__cause__ or exc).strip().rstrip(".")


def _source_window(ds: Any, grid: Grid, window: Window, factor: float) -> Any:
    from rasterio.windows import Window as RioWindow

    row, col, height, width = window.scaled(factor)
    offset_col = (grid.transform.c - ds.transform.c) / abs(ds.transform.a)
    offset_row = (ds.transform.f - grid.transform.f) / abs(ds.transform.a)
    return RioWindow(col + offset_col, row + offset_row, width, height)


def _read_padded(ds: Any, indexes: Sequence[int], src: Any, nodata: float | None) -> np.ndarray:
    """Bands ``indexes`` of ``src`` (a window of ``ds`` that may reach past its edges) as
    (k, h, w) float32, NaN where the window lies outside the file.

    A coarse grid rounds its size up (511 px at 10 m are 256 px at 20 m), so the last coarse
    pixels cover fine pixels that do not exist; they are averaged over those that do.
    """
    from rasterio.windows import Window as RioWindow

    row, col = round(src.row_off), round(src.col_off)
    height, width = round(src.height), round(src.width)
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + height, ds.height), min(col + width, ds.width)
    out = np.full((len(indexes), height, width), np.nan, np.float32)
    if bottom > top and right > left:
        inside = RioWindow(left, top, right - left, bottom - top)
        data = _as_float(ds.read(list(indexes), window=inside), nodata)
        out[:, top - row : bottom - row, left - col : right - col] = data
    return out


def overview_factors(path: str, index: int = 1, sign: str | None = None) -> dict[int, int]:
    """Overviews of band ``index`` of ``path`` that hold block means of its pixels, as
    ``{decimation factor: overview level}`` (e.g. ``{2: 0, 4: 1}`` for a COG with average
    overviews); empty when it has none. Read once per file."""
    return dict(_raster_layout(path, index, sign)[1])


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
def _reads_band_alone(path: str, sign: str | None) -> bool:
    """Whether one band of ``path`` decodes without the others: one band, or band-interleaved."""
    import rasterio

    with open_raster(path, sign) as ds:
        return bool(ds.count == 1 or ds.interleaving == rasterio.enums.Interleaving.band)


@functools.lru_cache(maxsize=256)
def _raster_layout(
    path: str, index: int, sign: str | None = None
) -> tuple[float, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """Pixel size of ``path``, its overviews that hold block means of its pixels
    ``((decimation, level), ...)``: sized ceil(size / decimation), as GDAL sizes them, and
    equal to the block means of a sample (:func:`_holds_block_means`), and all its overviews
    sized so. Overviews built by nearest neighbour, and JPEG 2000 resolution levels (wavelet
    low-passes: a few percent off at edges, enough to move a class boundary), are only in
    the last. JPEG 2000 levels are known to be such low-passes and are not sampled
    (sampling decodes a codestream tile per level, in every process that reads the file)."""
    import rasterio

    found, sized = [], []
    try:
        with open_raster(path, sign) as ds:
            factors = ds.overviews(index)
            height, width = ds.height, ds.width
            resolution = abs(ds.transform.a)
            wavelet = str(ds.driver).upper().startswith("JP2")
            for level, factor in enumerate(factors):
                with open_raster(path, sign, overview_level=level) as ov:
                    exact = (ov.height, ov.width) == (-(-height // factor), -(-width // factor))
                    if factor > 1 and exact:
                        sized.append((int(factor), level))
                        if not wavelet and _holds_block_means(ds, ov, index, factor):
                            found.append((int(factor), level))
    except rasterio.errors.RasterioIOError as exc:
        raise SceneFormatError(
            f"cannot read {path} ({gdal_reason(exc)}); the file is missing or damaged, "
            "re-download it"
        ) from exc
    return resolution, tuple(found), tuple(sized)


#: overview pixels (a side) compared with the block means of the full resolution
OVERVIEW_SAMPLE = 32


def _holds_block_means(ds: Any, ov: Any, index: int, factor: int) -> bool:
    """Whether overview ``ov`` of ``ds`` (decimation ``factor``) holds the means of
    ``factor`` x ``factor`` blocks, to its data type's rounding (half a unit per halving),
    on a sample at the centre where every pixel has data; False when the sample has no
    such block."""
    from rasterio.windows import Window as RioWindow

    side = min(OVERVIEW_SAMPLE, ov.height, ov.width)
    row, col = (ov.height - side) // 2, (ov.width - side) // 2
    coarse = ov.read(index, window=RioWindow(col, row, side, side)).astype(np.float64)
    fine = ds.read(index, window=RioWindow(col * factor, row * factor, side * factor,
                                           side * factor)).astype(np.float64)
    blocks = fine.reshape(side, factor, side, factor)
    nodata = ds.nodata
    whole = np.ones((side, side), bool) if nodata is None else np.all(
        blocks != nodata, axis=(1, 3)
    )
    if not whole.any():
        return False
    means = blocks.mean(axis=(1, 3))
    integer = np.issubdtype(np.dtype(ds.dtypes[index - 1]), np.integer)
    # GDAL builds each level from the one before: up to half a unit of rounding per level
    rounding = 0.5 * max(1.0, math.log2(factor)) + 1e-6
    tolerance = rounding if integer else 1e-4 * max(1.0, float(np.abs(means[whole]).max()))
    return bool(np.abs(coarse[whole] - means[whole]).max() <= tolerance)


def _overview_for(
    path: str, sign: str | None, index: int, factor: int, src: Any
) -> tuple[int, int] | None:
    """``(decimation, overview level)`` of the coarsest overview of ``path`` that holds block
    means (any sized like one inside :func:`approximate_overviews`), whose decimation
    divides ``factor`` and on whose grid the source window ``src`` starts, or None (read
    the full resolution then)."""
    row, col = src.row_off, src.col_off
    if abs(row - round(row)) > 1e-6 or abs(col - round(col)) > 1e-6:
        return None
    layout = _raster_layout(path, index, sign)
    usable = layout[2] if _approximate.get() else layout[1]
    for decimation, level in sorted(usable, reverse=True):
        if factor % decimation == 0 and round(row) % decimation == 0 == round(col) % decimation:
            return decimation, level
    return None


def _read_overview_means(
    path: str,
    sign: str | None,
    indexes: Sequence[int],
    nodata: float | None,
    src: Any,
    overview: tuple[int, int],
    factor: int,
) -> np.ndarray:
    """Block means over ``factor`` x ``factor`` pixels of the source window ``src``, read
    from an ``overview`` ``(decimation, level)`` (which holds block means over
    ``decimation`` px, rounded to the stored data type) and averaged over the rest."""
    from rasterio.windows import Window as RioWindow

    decimation, level = overview
    with open_raster(path, sign, overview_level=level) as ov:
        window = RioWindow(
            round(src.col_off) // decimation,
            round(src.row_off) // decimation,
            -(-round(src.width) // decimation),
            -(-round(src.height) // decimation),
        )
        data = _read_padded(ov, indexes, window, nodata)
    return data if factor == decimation else block_mean(data, factor // decimation, fill=np.nan)


def _as_float(data: np.ndarray, nodata: float | None) -> np.ndarray:
    out = data.astype(np.float32, copy=False)
    if nodata is not None:
        out[data == nodata] = np.nan
    return out


def _read_sources(sources: Sequence[BandSource], grid: Grid, window: Window) -> np.ndarray:
    """Stack (C, h, w) of ``sources``; neighbouring bands of one file are read in one call."""
    layers: list[np.ndarray] = []
    i = 0
    while i < len(sources):
        source = sources[i]
        if not isinstance(source, RasterBand):
            layers.append(source.read(grid, window))
            i += 1
            continue
        group = [source]
        while (
            i + len(group) < len(sources)
            and isinstance(nxt := sources[i + len(group)], RasterBand)
            and (nxt.path, nxt.nodata, nxt.sign) == (source.path, source.nodata, source.sign)
        ):
            group.append(nxt)
        indexes = [g.index for g in group]
        layers.extend(
            read_raster_window(source.path, indexes, source.nodata, grid, window, sign=source.sign)
        )
        i += len(group)
    return np.stack(layers)


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
        return (*opened, *(s.path for s in self.sources if isinstance(s, RasterBand)))

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
        raw = _read_sources(self.sources, self.grid, window)
        return to_reflectance(raw, self.bands, self.radiometry, nodata=None)

    def reads_cheaply_at(self, resolution: float, *, exact: bool = True) -> bool:
        """Whether every band can be read at ``resolution`` (coarser than the grid) without
        decoding finer pixels: its file is that coarse already, or has an overview whose
        decimation divides the factor: one that holds block means (average-built COG
        overviews) or, unless ``exact``, any sized like one (JPEG 2000 resolution levels,
        read inside :func:`approximate_overviews`)."""
        for source in self.sources:
            if not isinstance(source, RasterBand):
                return False
            file_resolution, means, sized = _raster_layout(source.path, source.index, source.sign)
            overviews = means if exact else sized
            factor = resolution / file_resolution
            if factor <= 1 + 1e-6:
                continue
            if abs(factor - round(factor)) > 1e-6:
                return False
            if not any(round(factor) % decimation == 0 for decimation, _ in overviews):
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
            if isinstance(source, RasterBand):
                resolution = _raster_layout(source.path, source.index, source.sign)[0]
                if _reads_band_alone(source.path, source.sign) and (best is None or resolution < best[0]):
                    best = (resolution, source.band)
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


def sun_angles_from_tags(
    tags: dict[str, str], grid: Grid, *, where: str = "raster tags"
) -> SunAngles | None:
    """Sun angles from raster tags: explicit angle tags, else acquisition time + location.

    Recognised tags: ``MEAN_SOLAR_ZENITH_ANGLE``/``MEAN_SOLAR_AZIMUTH_ANGLE`` (as in Earth
    Engine exports) or ``SUN_ZENITH``/``SUN_AZIMUTH``; otherwise ``TIFFTAG_DATETIME`` or
    ``ACQUISITION_DATE`` with the scene centre gives the solar position (NOAA formulae).
    ``tags`` are the raster's dataset tags with upper-case keys (see :func:`raster_info`);
    ``where`` names them in errors (angles that are not numbers, or impossible).
    """
    for zen_key, az_key in (
        ("MEAN_SOLAR_ZENITH_ANGLE", "MEAN_SOLAR_AZIMUTH_ANGLE"),
        ("SUN_ZENITH", "SUN_AZIMUTH"),
    ):
        if zen_key in tags and az_key in tags:
            return sun_angles(tags[zen_key], tags[az_key], source=where)
    stamp = tags.get("ACQUISITION_DATE") or tags.get("TIFFTAG_DATETIME")
    if stamp is None or grid.crs is None:
        return None
    from s2clouds.io.solar import grid_centre_lonlat, parse_timestamp, solar_position

    when = parse_timestamp(stamp)
    if when is None:
        return None
    lon, lat = grid_centre_lonlat(grid)
    zenith, azimuth = solar_position(when, lon, lat)
    return SunAngles(zenith, azimuth, source=f"solar position at {when.isoformat()}")
