"""Open any supported input as a :class:`~s2clouds.io.scene.Scene`: :func:`read_scene`.

Each format is an opener (:class:`SceneOpener`, registered in :data:`OPENERS`, asked in order):
a ``.SAFE`` folder or zip (:mod:`s2clouds.io.safe`), a STAC item JSON whose assets are local or
remote files (:mod:`s2clouds.io.stac`), a multi-band GeoTIFF/COG, a folder of single-band
files named by band, a NumPy array or an ``xarray.DataArray``; packages add formats through
the ``s2clouds.openers`` entry points (docs/plugins.md). The scene types live in
:mod:`s2clouds.io.scene`, which the format readers import; nothing imports this module back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from s2clouds.bands import ALL_BANDS, canonical_band_name, canonical_band_names
from s2clouds.errors import BandError, RadiometryError, SceneFormatError
from s2clouds.io.bands import ArrayBand, RasterBand
from s2clouds.io.grid import Grid
from s2clouds.io.headers import RasterInfo, raster_info, shared_grid
from s2clouds.io.limits import check_regular_file
from s2clouds.io.safe import read_safe
from s2clouds.io.scene import Scene
from s2clouds.io.stac import looks_like_stac_item, read_stac_item
from s2clouds.io.sun import SunAngles, sun_angles_from_tags
from s2clouds.radiometry import Radiometry
from s2clouds.registry import Registry

if TYPE_CHECKING:
    import xarray as xr

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img")


def _band_from_filename(path: Path) -> str | None:
    """Band name in a file name such as ``B02.tif``, ``T32TQM_20220101_B8A_20m.jp2``, ``red.tif``."""
    stem = path.stem
    for token in reversed(re.split(r"[_.\-\s]+", stem)):
        try:
            return canonical_band_name(token)
        except BandError:
            continue
    return None


def _default_radiometry(infos: Sequence[RasterInfo], scale: str | None) -> Radiometry:
    """DN (divide by 10000) for integer files, reflectance for float files, unless told.

    Files of both kinds cannot share one scaling, and 8-bit files (``uint8``, ``int8``: a
    picture export, whose 0-255 values are not Sentinel-2's 12-bit-and-more DN) are not
    Sentinel-2 values at all: :class:`RadiometryError` unless ``scale`` says how to read
    them all.
    """
    if scale is not None:
        return Radiometry(kind=scale)
    eight_bit = [
        f"{Path(i.path).name} ({i.dtype})" for i in infos if np.dtype(i.dtype).itemsize == 1
    ]
    if eight_bit:
        raise RadiometryError(
            f"{', '.join(eight_bit)}: 8-bit values, not Sentinel-2 "
            "digital numbers (uint16, 0-10000 for reflectance 0-1): an 8-bit export loses the "
            "radiometry the models need. Give the original uint16 or float bands, or "
            "scale=dn|reflectance if you know how its values were made"
        )
    floats = [Path(i.path).name for i in infos if np.dtype(i.dtype).kind == "f"]
    integers = [Path(i.path).name for i in infos if np.dtype(i.dtype).kind != "f"]
    if floats and integers:
        raise RadiometryError(
            f"{Path(infos[0].path).parent}: floating-point bands ({', '.join(floats)}) and "
            f"integer bands ({', '.join(integers)}) are not scaled alike; convert them to one "
            "data type (e.g. uint16 DN), or give scale="
        )
    return Radiometry(kind="reflectance" if floats else "dn")


def read_band_folder(
    folder: Path,
    *,
    resolution: float | None = None,
    scale: str | None = None,
    level: str | None = None,
) -> Scene:
    """A folder of single-band rasters named by band (``B02.tif``, ``B03.tif``, ...)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    named = [(b, p) for p in files if (b := _band_from_filename(p)) is not None]
    if not named:
        raise SceneFormatError(
            f"{folder} holds no raster named by band (expected e.g. B02.tif, B03.tif, B04.tif)"
        )
    canonical_band_names(b for b, _ in named)  # refuses two files for one band
    named.sort(key=lambda bp: _band_sort_key(bp[0]))
    infos = [raster_info(p) for _, p in named]
    grid = shared_grid(infos, resolution)
    return Scene(
        sources=tuple(
            RasterBand(b, info.path, 1, info.nodata_or_zero)
            for (b, _), info in zip(named, infos, strict=True)
        ),
        grid=grid,
        radiometry=_default_radiometry(infos, scale),
        angles=sun_angles_from_tags(infos[0].tags, grid, where=f"the tags of {infos[0].path}"),
        level=level,
        product_id=folder.name,
        meta={"path": str(folder), "files": tuple(str(p) for _, p in named)},
    )


def _band_sort_key(band: str) -> int:
    return [b.name for b in ALL_BANDS].index(band)


def read_geotiff(
    path: Path,
    *,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    scale: str | None = None,
    level: str | None = None,
) -> Scene:
    """A multi-band GeoTIFF/COG; band names from ``bands`` or the file's band descriptions."""
    info = raster_info(path)
    count, descriptions = info.count, info.descriptions
    if bands is None:
        if not all(descriptions):
            single = _band_from_filename(path) if count == 1 else None
            if single is None:
                raise BandError(
                    f"{path} has {count} bands without names; give them with bands= "
                    "(e.g. bands=B02,B03,B04,B08)",
                    param="bands",
                )
            descriptions = (single,)
        bands = [str(d) for d in descriptions]
    names = canonical_band_names(bands)
    if len(names) != count:
        raise BandError(
            f"{path} has {count} bands but {len(names)} band names were given ({', '.join(names)}); "
            "give one name per band, in file order"
        )
    grid = shared_grid([info], resolution)
    return Scene(
        sources=tuple(
            RasterBand(b, str(path), i + 1, info.nodata_or_zero) for i, b in enumerate(names)
        ),
        grid=grid,
        radiometry=_default_radiometry([info], scale),
        angles=sun_angles_from_tags(info.tags, grid, where=f"the tags of {path}"),
        level=level,
        product_id=path.stem,
        meta={"path": str(path)},
    )


def scene_from_array(
    array: np.ndarray,
    bands: Sequence[str],
    *,
    scale: str = "reflectance",
    resolution: float = 10.0,
    crs: Any = None,
    transform: Any = None,
    angles: SunAngles | None = None,
    nodata: float | None = None,
    level: str | None = None,
) -> Scene:
    """A scene from a ``(C, H, W)`` array of DN or reflectance with its band names."""
    from affine import Affine

    array = np.asarray(array)
    if array.ndim != 3:
        raise BandError(f"expected a (C, H, W) array, got shape {array.shape}")
    names = canonical_band_names(bands)
    if array.shape[0] != len(names):
        hint = (
            " (is it (H, W, C)? use np.moveaxis(a, -1, 0))" if array.shape[-1] == len(names) else ""
        )
        raise BandError(
            f"array has {array.shape[0]} bands but {len(names)} band names were given{hint}"
        )
    if transform is None:
        transform = Affine(resolution, 0, 0, 0, -resolution, 0)
    grid = Grid(crs, transform, array.shape[1], array.shape[2])
    data = array.astype(np.float32)
    if nodata is not None:
        data = np.where(array == nodata, np.nan, data)
    return Scene(
        sources=tuple(ArrayBand(b, data[i]) for i, b in enumerate(names)),
        grid=grid,
        radiometry=Radiometry(kind=scale, level=level),
        angles=angles,
        level=level,
        product_id="array",
    )


@dataclass(frozen=True)
class OpenRequest:
    """What :func:`read_scene` was asked, as every opener receives it: ``bands`` (names in
    file order for GeoTIFFs and arrays, a selection for products and folders),
    ``resolution`` (metres of the output grid; None: the finest band's), ``scale``
    (``"dn"``/``"reflectance"``; None: guessed), ``level`` (``"L1C"``/``"L2A"``),
    ``pixel_size`` (metres per pixel of an array) and ``sign`` (the signing hook of remote
    assets, see :mod:`s2clouds.io.remote`)."""

    bands: Sequence[str] | None = None
    resolution: float | None = None
    scale: str | None = None
    level: str | None = None
    pixel_size: float | None = None
    sign: str | None = None


@runtime_checkable
class SceneOpener(Protocol):
    """One input format (as xarray's backend entry points): ``description`` names it in
    messages; ``guess_can_open(source)`` says, cheaply and without raising, whether the format
    is ``source``'s (by type, suffix or name: nothing is read); ``open(source, request)``
    makes the :class:`Scene` (reading headers only)."""

    description: str

    def guess_can_open(self, source: Any) -> bool: ...

    def open(self, source: Any, request: OpenRequest) -> Scene: ...


def _existing_path(source: Any) -> Path | None:
    """``source`` as a path when it is a str or path-like that exists, else None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = Path(source)
    return path if path.exists() else None


def _check_path_request(path: Path, request: OpenRequest, resolutions: bool = True) -> None:
    """Refuse what a georeferenced file cannot take: ``pixel_size`` (arrays only), and with
    ``resolutions`` an output grid other than 10, 20 or 60 m."""
    if request.pixel_size is not None:
        raise SceneFormatError(
            f"pixel_size is for array inputs; {path} has its own georeference (use "
            "resolution to choose the output grid)"
        )
    if resolutions and request.resolution is not None and request.resolution not in (10, 20, 60):
        raise SceneFormatError(f"resolution must be 10, 20 or 60 m, not {request.resolution}")


class DataArrayOpener:
    """An ``xarray.DataArray`` with a band dimension and a CRS (odc-stac, stackstac,
    rioxarray), read on the grid of its coordinates (see :mod:`s2clouds.io.dataarray`)."""

    description = "an xarray DataArray with a band dimension and a CRS"

    def guess_can_open(self, source: Any) -> bool:
        from s2clouds.io.dataarray import is_dataarray

        return is_dataarray(source)

    def open(self, source: Any, request: OpenRequest) -> Scene:
        from s2clouds.io.dataarray import dataarray_raster

        if request.pixel_size is not None or request.resolution is not None:
            raise SceneFormatError(
                "a DataArray is read on the grid of its coordinates; leave resolution and "
                "pixel_size out (resample it with rioxarray first)"
            )
        raster = dataarray_raster(source, bands=request.bands, scale=request.scale)
        return scene_from_array(
            raster.values,
            raster.names,
            scale=raster.scale,
            crs=raster.crs,
            transform=raster.transform,
            nodata=raster.nodata,
            level=request.level,
        )


class ArrayOpener:
    """A (C, H, W) NumPy array with its band names; never resampled, so ``resolution`` (the
    output grid) must be None or its ``pixel_size`` (metres, default 10)."""

    description = "a (C, H, W) NumPy array with bands=[...]"

    def guess_can_open(self, source: Any) -> bool:
        return isinstance(source, np.ndarray)

    def open(self, source: Any, request: OpenRequest) -> Scene:
        if request.bands is None:
            raise BandError(
                "an array input needs its band names, e.g. bands=['B02','B03','B04','B08']"
            )
        size = request.pixel_size or 10.0
        resolution = request.resolution
        if resolution is not None and resolution != size:
            raise SceneFormatError(
                f"an array is not resampled: its output grid is its pixel size ({size:g} m), "
                f"not {resolution:g} m; give pixel_size={resolution:g} if its pixels are "
                f"{resolution:g} m"
            )
        return scene_from_array(
            source,
            request.bands,
            scale=request.scale or "reflectance",
            resolution=size,
            level=request.level,
        )


class StacItemOpener:
    """A STAC item ``.json`` whose band assets are local or remote (http/https/s3) files
    (:mod:`s2clouds.io.stac`); ``resolution`` may be any the item's bands allow."""

    description = "a STAC item .json"

    def guess_can_open(self, source: Any) -> bool:
        return _existing_path(source) is not None and looks_like_stac_item(source)

    def open(self, source: Any, request: OpenRequest) -> Scene:
        path = Path(source)
        _check_path_request(path, request, resolutions=False)
        return read_stac_item(
            path,
            bands=request.bands,
            resolution=request.resolution,
            scale=request.scale,
            level=request.level,
            sign=request.sign,
        )


class SafeOpener:
    """A Sentinel-2 ``.SAFE`` folder or zip (:mod:`s2clouds.io.safe`), by its name."""

    description = "a .SAFE folder or .zip"

    def guess_can_open(self, source: Any) -> bool:
        path = _existing_path(source)
        if path is None:
            return False
        name = path.name.upper()
        return (
            name.endswith(".SAFE")
            or name.endswith(".SAFE.ZIP")
            or (name.endswith(".ZIP") and name.startswith("S2"))
        )

    def open(self, source: Any, request: OpenRequest) -> Scene:
        path = Path(source)
        _check_path_request(path, request)
        scene = read_safe(path, resolution=request.resolution, level=request.level)
        return scene.select(request.bands) if request.bands else scene


class BandFolderOpener:
    """A folder of single-band rasters named by band (:func:`read_band_folder`)."""

    description = "a folder of band files (B02.tif, B03.tif, ...)"

    def guess_can_open(self, source: Any) -> bool:
        path = _existing_path(source)
        return path is not None and path.is_dir()

    def open(self, source: Any, request: OpenRequest) -> Scene:
        path = Path(source)
        _check_path_request(path, request)
        scene = read_band_folder(
            path, resolution=request.resolution, scale=request.scale, level=request.level
        )
        return scene.select(request.bands) if request.bands else scene


class GeoTiffOpener:
    """A multi-band GeoTIFF/COG or other raster file (:data:`RASTER_SUFFIXES`), by suffix
    (:func:`read_geotiff`)."""

    description = f"a multi-band GeoTIFF/COG ({', '.join(RASTER_SUFFIXES)})"

    def guess_can_open(self, source: Any) -> bool:
        path = _existing_path(source)
        return path is not None and path.is_file() and path.suffix.lower() in RASTER_SUFFIXES

    def open(self, source: Any, request: OpenRequest) -> Scene:
        path = Path(source)
        _check_path_request(path, request)
        return read_geotiff(
            path,
            bands=request.bands,
            resolution=request.resolution,
            scale=request.scale,
            level=request.level,
        )


#: entry-point group of third-party input formats: each names a :class:`SceneOpener` (or a
#: class of one, made without arguments); they are asked after the built-in formats
OPENER_ENTRY_POINTS = "s2clouds.openers"


def _opener(name: str, loaded: Any) -> SceneOpener:
    """The opener an entry point ``name`` loads (a class is instantiated)."""
    opener = loaded() if isinstance(loaded, type) else loaded
    if not isinstance(opener, SceneOpener):
        raise TypeError(
            f"expected a scene opener (description, guess_can_open, open), got {opener!r}"
        )
    return opener


#: the input formats, asked in this order by :func:`read_scene`
OPENERS: Registry[SceneOpener] = Registry("input format", group=OPENER_ENTRY_POINTS, adapt=_opener)
OPENERS.register("dataarray", DataArrayOpener())
OPENERS.register("array", ArrayOpener())
OPENERS.register("stac", StacItemOpener())
OPENERS.register("safe", SafeOpener())
OPENERS.register("band-folder", BandFolderOpener())
OPENERS.register("geotiff", GeoTiffOpener())


def read_scene(
    source: str | Path | np.ndarray | xr.DataArray,
    *,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    scale: str | None = None,
    level: str | None = None,
    pixel_size: float | None = None,
    sign: str | None = None,
) -> Scene:
    """Open any supported input as a :class:`Scene` (nothing is read until :meth:`Scene.read`).

    ``source``: a ``.SAFE`` folder or ``.zip``, a STAC item ``.json`` whose band assets are
    local or remote files, a multi-band GeoTIFF/COG, a folder of band files, or a (C, H, W) array (then
    ``bands`` is required). ``resolution`` (10, 20 or 60 m)
    chooses the output grid; default: the finest band's. An array is never resampled: its
    grid has ``pixel_size`` metres per pixel (default 10), and ``resolution`` must be None or
    the same. ``scale`` is ``"dn"`` or ``"reflectance"`` to override the guess from the file's
    data type. For GeoTIFFs ``bands`` names the bands in file order; for SAFE products and
    folders it selects bands. ``sign`` names the signing hook for the remote (http/https/s3)
    assets of a STAC item, run at each open (see :mod:`s2clouds.io.remote`). An
    ``xarray.DataArray`` with a band dimension and a CRS (odc-stac, stackstac, rioxarray) is
    read on the grid of its coordinates (see :mod:`s2clouds.io.dataarray`; ``bands``
    overrides its band coordinate; never resampled).

    Each format is an opener of :data:`OPENERS` (plugins: the ``s2clouds.openers`` entry
    points); the first whose ``guess_can_open`` accepts ``source`` opens it.
    :class:`SceneFormatError` when the input is missing or none does, listing every format.
    """
    request = OpenRequest(bands, resolution, scale, level, pixel_size, sign)
    if isinstance(source, (str, os.PathLike)):
        check_regular_file(source if isinstance(source, str) else Path(source))
    for opener in OPENERS.values():
        if opener.guess_can_open(source):
            return opener.open(source, request)
    if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
        raise SceneFormatError(f"input not found: {Path(source)}")
    formats = "; ".join(f"{o.description} ({name})" for name, o in OPENERS.items())
    raise SceneFormatError(f"unknown input format: {source}. Give one of: {formats}")
