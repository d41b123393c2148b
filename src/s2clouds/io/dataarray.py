"""``xarray.DataArray`` inputs and outputs: what odc-stac, stackstac and rioxarray hand users.

A DataArray is a scene when it has a band dimension (``band``, ``bands``, ``variable`` or
``channel``; its coordinate values name the bands, e.g. ``B02`` or ``blue``), two spatial
dimensions (``y``/``x``, or ``latitude``/``longitude``, ``lat``/``lon``) with regular pixel-
centre coordinates, and a CRS: rioxarray's ``da.rio.crs`` (the ``spatial_ref`` coordinate,
as odc-stac and rioxarray write it) or stackstac's ``da.attrs["crs"]``. A ``time``
dimension of size 1 is dropped; select one date of a longer one first. The transform comes
from the coordinates (pixel centres, so the corner is half a pixel out), falling back to
``da.rio.transform()`` for a one-pixel axis. Integer data are DN (/ 10000), floats
reflectance, unless ``scale`` says otherwise; the no-data value is ``da.rio.nodata`` or the
``nodata``/``_FillValue`` attribute (else 0 for integer DN, as for files), and NaN in float
data.

The data are loaded (a Dask-backed array is computed once) when the scene is opened. Neither
xarray nor rioxarray is imported unless a DataArray is given: they are the ``xarray`` extra.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from s2clouds.errors import SceneFormatError

if TYPE_CHECKING:
    import xarray as xr

BAND_DIMS = ("band", "bands", "variable", "channel")
SPATIAL_DIMS = (("y", "x"), ("latitude", "longitude"), ("lat", "lon"))
TIME_DIMS = ("time",)
#: canonical mask classes, as the mask DataArray's ``flag_values`` / ``flag_meanings``
MASK_FLAGS = ((0, "clear"), (1, "thick_cloud"), (2, "thin_cloud"), (3, "shadow"), (255, "no_data"))


def is_dataarray(value: object) -> TypeGuard[xr.DataArray]:
    """True for an ``xarray.DataArray`` (without importing xarray when it is not loaded)."""
    xarray = sys.modules.get("xarray")
    return xarray is not None and isinstance(value, xarray.DataArray)


def _spatial_dims(da: xr.DataArray) -> tuple[str, str]:
    for y, x in SPATIAL_DIMS:
        if y in da.dims and x in da.dims:
            return y, x
    raise SceneFormatError(
        f"the DataArray has dimensions {tuple(map(str, da.dims))}; it needs spatial "
        "dimensions y and x (or latitude/longitude) and a band dimension"
    )


def _band_dim(da: xr.DataArray) -> str:
    for name in BAND_DIMS:
        if name in da.dims:
            return name
    raise SceneFormatError(
        f"the DataArray has no band dimension (dimensions {tuple(map(str, da.dims))}); name "
        f"it one of {', '.join(BAND_DIMS)}, e.g. ds.to_array('band') for an odc-stac Dataset"
    )


def _without_time(da: xr.DataArray) -> xr.DataArray:
    for name in TIME_DIMS:
        if name in da.dims:
            if da.sizes[name] != 1:
                raise SceneFormatError(
                    f"the DataArray holds {da.sizes[name]} dates ({name} dimension); give one: "
                    f"da.isel({name}=0)"
                )
            da = da.isel({name: 0})
    return da


def dataarray_crs(da: xr.DataArray) -> Any:
    """The CRS (``rasterio.crs.CRS``) of ``da``; :class:`SceneFormatError` when it has none."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    found: Any = None
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)

        found = da.rio.crs
    except ImportError:
        pass
    if found is None and "spatial_ref" in da.coords:
        attrs = da.coords["spatial_ref"].attrs
        found = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    if found is None:
        found = da.attrs.get("crs")
    if found is None:
        raise SceneFormatError(
            "the DataArray has no CRS (no spatial_ref coordinate, da.rio.crs or attrs['crs']); "
            "set one, e.g. da = da.rio.write_crs('EPSG:32633') with rioxarray"
        )
    try:
        return found if isinstance(found, CRS) else CRS.from_user_input(found)
    except CRSError as exc:
        raise SceneFormatError(f"the DataArray's CRS {found!r} is not readable ({exc})") from exc


def _regular_step(values: np.ndarray, name: str) -> float:
    steps = np.diff(values.astype(np.float64))
    step = float(steps[0])
    if step == 0 or not np.allclose(steps, step, rtol=1e-6, atol=abs(step) * 1e-6):
        raise SceneFormatError(
            f"the DataArray's {name} coordinates are not evenly spaced; it must be a regular "
            "raster grid (reproject it first, e.g. with da.rio.reproject)"
        )
    return step


def dataarray_transform(da: xr.DataArray, y: str, x: str) -> Any:
    """The north-up affine transform of ``da``'s pixel grid, from its pixel-centre coordinates."""
    from affine import Affine

    xs, ys = np.asarray(da.coords[x].values), np.asarray(da.coords[y].values)
    if xs.size < 2 or ys.size < 2:
        try:
            import rioxarray  # noqa: F401

            transform = da.rio.transform()
        except ImportError as exc:
            raise SceneFormatError(
                "a DataArray one pixel wide or tall needs rioxarray for its transform"
            ) from exc
        return transform
    dx, dy = _regular_step(xs, x), _regular_step(ys, y)
    if dy > 0:
        raise SceneFormatError(
            f"the DataArray's {y} coordinates increase downwards (south-up); flip it first: "
            f"da.sortby('{y}', ascending=False)"
        )
    return Affine(dx, 0.0, float(xs[0]) - dx / 2, 0.0, dy, float(ys[0]) - dy / 2)


def _nodata(da: xr.DataArray) -> float | None:
    value: Any = None
    try:
        import rioxarray  # noqa: F401

        value = da.rio.nodata
    except ImportError:
        pass
    if value is None:
        value = da.attrs.get("nodata", da.attrs.get("_FillValue"))
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value)


@dataclass(frozen=True)
class DataArrayRaster:
    """What a scene needs from a DataArray: ``values`` (C, H, W) as stored, band ``names``,
    ``scale`` (``"dn"`` or ``"reflectance"``), ``crs``, north-up ``transform``, ``nodata``."""

    values: np.ndarray
    names: tuple[str, ...]
    scale: str
    crs: Any
    transform: Any
    nodata: float | None


def dataarray_raster(
    da: xr.DataArray, *, bands: Sequence[str] | None = None, scale: str | None = None
) -> DataArrayRaster:
    """The raster of a DataArray (see the module docstring): (band, y, x) values on the grid
    its coordinates and CRS describe. ``bands`` overrides the band coordinate.
    :func:`s2clouds.io.scenes.read_scene` makes the scene of it."""
    da = _without_time(da)
    y, x = _spatial_dims(da)
    band = _band_dim(da)
    extra = [d for d in da.dims if d not in (band, y, x)]
    if extra:
        raise SceneFormatError(
            f"the DataArray has further dimensions {tuple(map(str, extra))}; select one value "
            "of each (da.isel(...)) so that it is (band, y, x)"
        )
    if bands is not None:
        names = tuple(bands)
    elif band in da.coords:
        names = tuple(str(v) for v in np.asarray(da.coords[band].values))
    else:
        raise SceneFormatError(
            f"the DataArray's {band} dimension has no coordinate naming the bands; give "
            "bands=['B02', 'B03', ...] or assign_coords"
        )
    crs = dataarray_crs(da)
    transform = dataarray_transform(da, y, x)
    values = np.asarray(da.transpose(band, y, x).values)
    kind = scale or ("reflectance" if values.dtype.kind == "f" else "dn")
    nodata = _nodata(da)
    if nodata is None and values.dtype.kind in "iu":
        nodata = 0.0  # as for files: integer DN 0 is no data unless a value is declared
    return DataArrayRaster(values, names, kind, crs, transform, nodata)


def mask_dataarray(mask: np.ndarray, like: xr.DataArray, attrs: dict[str, Any]) -> xr.DataArray:
    """The (y, x) uint8 canonical ``mask`` as a DataArray named ``mask`` on ``like``'s spatial
    coordinates (its ``spatial_ref``, and its other scalar coordinates such as ``time``, are
    kept); ``attrs`` add to the CF ``flag_values``/``flag_meanings`` and ``nodata``."""
    import xarray as xr

    scalar = _without_time(like)
    y, x = _spatial_dims(scalar)
    coords = {y: scalar.coords[y], x: scalar.coords[x]}
    for name, coord in scalar.coords.items():
        if name not in coords and coord.ndim == 0:
            coords[str(name)] = coord
    flags = {
        "flag_values": [v for v, _ in MASK_FLAGS],
        "flag_meanings": " ".join(n for _, n in MASK_FLAGS),
        "nodata": 255,
    }
    out = xr.DataArray(mask, dims=(y, x), coords=coords, name="mask", attrs={**flags, **attrs})
    if "spatial_ref" not in out.coords and "crs" in like.attrs:
        out.attrs["crs"] = like.attrs["crs"]
    return out
