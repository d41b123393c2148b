"""Open any supported input as a :class:`~s2clouds.io.scene.Scene`: :func:`read_scene`.

One opener for every format: a ``.SAFE`` folder or zip (:mod:`s2clouds.io.safe`), a STAC item
JSON whose assets are local files (:mod:`s2clouds.io.stac`), a multi-band GeoTIFF/COG, a folder
of single-band files named by band, or a NumPy array. The scene types live in
:mod:`s2clouds.io.scene`, which the format readers import; nothing imports this module back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from s2clouds.bands import ALL_BANDS, canonical_band_name, canonical_band_names
from s2clouds.errors import BandError, RadiometryError, SceneFormatError
from s2clouds.io.grid import Grid
from s2clouds.io.limits import check_regular_file
from s2clouds.io.safe import read_safe
from s2clouds.io.scene import (
    ArrayBand,
    RasterBand,
    RasterInfo,
    Scene,
    SunAngles,
    raster_info,
    shared_grid,
    sun_angles_from_tags,
)
from s2clouds.io.stac import looks_like_stac_item, read_stac_item
from s2clouds.radiometry import Radiometry

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
    eight_bit = [f"{Path(i.path).name} ({i.dtype})" for i in infos if np.dtype(i.dtype).itemsize == 1]
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
    """
    from s2clouds.io.dataarray import dataarray_raster, is_dataarray

    if is_dataarray(source):
        if pixel_size is not None or resolution is not None:
            raise SceneFormatError(
                "a DataArray is read on the grid of its coordinates; leave resolution and "
                "pixel_size out (resample it with rioxarray first)"
            )
        raster = dataarray_raster(source, bands=bands, scale=scale)
        return scene_from_array(
            raster.values, raster.names, scale=raster.scale, crs=raster.crs,
            transform=raster.transform, nodata=raster.nodata, level=level,
        )
    if isinstance(source, np.ndarray):
        return _array_scene(source, bands, scale, level, resolution, pixel_size)
    if pixel_size is not None:
        raise SceneFormatError(
            f"pixel_size is for array inputs; {source} has its own georeference (use "
            "resolution to choose the output grid)"
        )
    path = Path(source)
    if not path.exists():
        raise SceneFormatError(f"input not found: {path}")
    check_regular_file(path)
    if looks_like_stac_item(path):
        return read_stac_item(
            path, bands=bands, resolution=resolution, scale=scale, level=level, sign=sign
        )
    if resolution is not None and resolution not in (10, 20, 60):
        raise SceneFormatError(f"resolution must be 10, 20 or 60 m, not {resolution}")
    if _is_safe(path):
        scene = read_safe(path, resolution=resolution, level=level)
        return scene.select(bands) if bands else scene
    if path.is_dir():
        scene = read_band_folder(path, resolution=resolution, scale=scale, level=level)
        return scene.select(bands) if bands else scene
    if path.suffix.lower() in RASTER_SUFFIXES:
        return read_geotiff(path, bands=bands, resolution=resolution, scale=scale, level=level)
    raise SceneFormatError(
        f"unknown input format: {path}. Give a .SAFE folder or .zip, a GeoTIFF/COG, or a folder "
        "of band files (B02.tif, B03.tif, ...)"
    )


def _array_scene(
    array: np.ndarray,
    bands: Sequence[str] | None,
    scale: str | None,
    level: str | None,
    resolution: float | None,
    pixel_size: float | None,
) -> Scene:
    """:func:`read_scene` of a (C, H, W) array: never resampled, so ``resolution`` (the output
    grid) must be None or its ``pixel_size`` (metres, default 10)."""
    if bands is None:
        raise BandError("an array input needs its band names, e.g. bands=['B02','B03','B04','B08']")
    size = pixel_size or 10.0
    if resolution is not None and resolution != size:
        raise SceneFormatError(
            f"an array is not resampled: its output grid is its pixel size ({size:g} m), not "
            f"{resolution:g} m; give pixel_size={resolution:g} if its pixels are {resolution:g} m"
        )
    return scene_from_array(
        array, bands, scale=scale or "reflectance", resolution=size, level=level
    )


def _is_safe(path: Path) -> bool:
    name = path.name.upper()
    return (
        name.endswith(".SAFE")
        or name.endswith(".SAFE.ZIP")
        or (name.endswith(".ZIP") and name.startswith("S2"))
    )


