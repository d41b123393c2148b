"""STAC items: a Sentinel-2 STAC item JSON whose band assets are local or remote files.

A STAC item (https://github.com/radiantearth/stac-spec, ``type: Feature``) lists one asset per
band file. :func:`read_stac_item` turns an item into a lazy :class:`~s2clouds.io.scene.Scene`
of :class:`~s2clouds.io.bands.RasterBand` sources on the bands' common grid, so nothing is
read until a window is. Assets are local files (``href`` relative to the JSON, absolute, or
``file://``) or remote ones (``https://``, ``s3://``: read by HTTP range requests, signed at
each open by an optional hook, see :mod:`s2clouds.io.remote`). When an item has local band
files, those are read and remote ones are only listed (``meta["remote_bands"]``); an item
without any local band file is read remotely.

What is taken from the item (extensions ``eo``, ``raster``, ``view``, ``sat``, ``s2``):

* band of an asset: an ``eo:bands``/``bands`` name such as ``B8A``, else the band whose centre
  wavelength is nearest ``center_wavelength`` (micrometres), else the asset key or common name
  (Earth Search ``blue``, ``nir08``, ``rededge1``, ``swir16``; Planetary Computer ``B02``,
  ``B8A``; a ``-jp2`` or ``_10m`` suffix is ignored); a multi-band asset gives one source per
  band, in order; a COG wins over a JPEG 2000 copy of the same band;
* radiometry: Earth Search's ``earthsearch:boa_offset_applied`` first (true: the offset of
  baseline 04.00 is already in the values, so none is applied, whatever ``raster:bands`` says;
  false: the baseline's offset), then ``raster:bands`` ``scale``/``offset`` (value = DN *
  scale + offset), else the processing baseline ``s2:processing_baseline`` (offset -1000 DN
  from 04.00), else the data type (integers are DN / 10000); the offset is applied once;
* level from ``processing:level`` or ``s2:product_type``; sun angles from
  ``view:sun_elevation``/``view:sun_azimuth`` or ``s2:mean_solar_zenith``/``_azimuth``;
* no-data from ``raster:bands`` ``nodata`` (default 0, Sentinel-2's NODATA value).

Assets that are not spectral bands (SCL, AOT, WVP, the ``visual`` true-colour image,
thumbnails, metadata) are ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from s2clouds.bands import MSI_BANDS, band_info, canonical_band_name, canonical_band_names
from s2clouds.errors import BandError, RadiometryError, SceneFormatError
from s2clouds.io.bands import RasterBand
from s2clouds.io.headers import common_grid
from s2clouds.io.limits import read_bounded
from s2clouds.io.remote import is_remote, signer_name
from s2clouds.io.scene import Scene
from s2clouds.io.sun import SunAngles, sun_angles
from s2clouds.radiometry import DEFAULT_QUANTIFICATION, Radiometry, radiometry_for_baseline

#: asset roles and keys that never hold a spectral band
SKIPPED_ROLES = frozenset({"visual", "overview", "thumbnail", "metadata"})
SKIPPED_KEYS = frozenset({"visual", "tci", "thumbnail", "preview", "overview"})
#: ``s2:product_type`` -> processing level
PRODUCT_TYPE_LEVELS = {"S2MSI1C": "L1C", "S2MSI2A": "L2A", "S2MSI2AP": "L2A"}
#: a centre wavelength this close (nm) to a band's identifies it
WAVELENGTH_TOLERANCE_NM = 30.0
PRODUCT_BAND_NAME = re.compile(r"^[Bb]\d")
RASTER_MEDIA_HINTS = ("image/tiff", "image/jp2", "image/vnd.stac.geotiff", "application/x-hdf")
#: asset-key suffixes that name a copy or a resolution, not a band (``blue-jp2``, ``B02_10m``)
KEY_SUFFIX = re.compile(r"(?:[-_]jp2|[-_]\d{2}m)$", re.IGNORECASE)
#: item properties saying whether the baseline 04.00 offset is already in the values (Earth
#: Search v1, and its older ``sentinel:`` spelling)
OFFSET_APPLIED_KEYS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")


@dataclass(frozen=True)
class BandAsset:
    """One band found in an item: canonical ``band``, ``path`` (a local file, or the unsigned
    href of a remote one), 1-based ``index`` in it, and its ``raster:bands`` entry
    (``scale``, ``offset``, ``nodata``, ``data_type``)."""

    band: str
    path: str
    index: int
    raster: Mapping[str, Any]


def looks_like_stac_item(source: object) -> bool:
    """True for paths of existing ``.json`` files (then read with :func:`read_stac_item`)."""
    if not isinstance(source, (str, Path)):
        return False
    path = Path(source)
    return path.suffix.lower() == ".json" and path.is_file()


def load_item(path: Path) -> dict[str, Any]:
    """Parse ``path`` and check that it is one STAC item (``type: Feature`` with ``assets``)."""
    try:
        with open(path, "rb") as handle:
            item = json.loads(read_bounded(handle, f"STAC item {path}").decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SceneFormatError(f"cannot read STAC item {path}: {exc}") from exc
    except RecursionError as exc:  # JSON nested thousands deep: no item is
        raise SceneFormatError(
            f"cannot read STAC item {path}: its JSON is nested too deep to be a STAC item"
        ) from exc
    if not isinstance(item, dict) or item.get("type") != "Feature":
        kind = item.get("type") if isinstance(item, dict) else type(item).__name__
        raise SceneFormatError(
            f"{path} is not a STAC item (type {kind!r}, expected 'Feature'); give one item JSON "
            "per scene (split FeatureCollections into items)"
        )
    if not isinstance(item.get("assets"), dict) or not item["assets"]:
        raise SceneFormatError(f"STAC item {path} has no assets; it cannot point at band files")
    if not isinstance(item.get("properties") or {}, dict):
        kind = type(item["properties"]).__name__
        raise SceneFormatError(
            f"STAC item {path}: properties is a {kind}, not an object; fix the item"
        )
    return item


def item_properties(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``properties`` object of an item, empty when it has none or they are not an
    object (a list, text)."""
    properties = item.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def local_path(href: str, base: Path) -> Path | None:
    """The local file an asset ``href`` names (relative to ``base``), or None for URLs."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # http(s), s3, gs, ... (not a drive letter)
        return None
    path = Path(href)
    return path if path.is_absolute() else base / path


def _band_entries(asset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The per-band metadata of an asset: STAC 1.1 ``bands`` or the ``eo:bands`` extension."""
    entries = asset.get("bands") or asset.get("eo:bands") or [{}]
    return [e if isinstance(e, Mapping) else {} for e in entries]


def _band_by_wavelength(micrometres: float) -> str | None:
    nm = 1000.0 * micrometres
    nearest = min(MSI_BANDS, key=lambda b: abs((b.wavelength_s2a or 0.0) - nm))
    distance = abs((nearest.wavelength_s2a or 0.0) - nm)
    return nearest.name if distance <= WAVELENGTH_TOLERANCE_NM else None


def identify_band(key: str, entry: Mapping[str, Any]) -> str | None:
    """Canonical band of one asset band, or None when it is not a Sentinel-2 spectral band.

    Product names (``B8A``) come first, then the centre wavelength (it tells ``nir`` from the
    narrow NIR whatever the aliases), then the asset key and the common name.
    """
    name = str(entry.get("name") or entry.get("eo:name") or "")
    if PRODUCT_BAND_NAME.match(name):
        try:
            return _spectral_or_none(canonical_band_name(name))
        except BandError:
            pass
    wavelength = entry.get("center_wavelength") or entry.get("eo:center_wavelength")
    if isinstance(wavelength, (int, float)):
        return _band_by_wavelength(float(wavelength))
    common = entry.get("common_name") or entry.get("eo:common_name")
    for candidate in (key, KEY_SUFFIX.sub("", key), name, common):
        if not candidate:
            continue
        try:
            return _spectral_or_none(canonical_band_name(str(candidate)))
        except BandError:
            continue
    return None


def _spectral_or_none(band: str) -> str | None:
    return band if band_info(band).spectral else None


def _is_band_asset(key: str, asset: Mapping[str, Any]) -> bool:
    roles = {str(r).lower() for r in asset.get("roles") or ()}
    media = str(asset.get("type") or "").lower()
    if key.lower() in SKIPPED_KEYS or (roles & SKIPPED_ROLES and "data" not in roles):
        return False
    return not media or any(hint in media for hint in RASTER_MEDIA_HINTS)


def _raster_entries(
    item: Mapping[str, Any], key: str, asset: Mapping[str, Any], count: int
) -> list[Mapping[str, Any]]:
    """The asset's ``raster:bands``: a list of objects, one per band (empty objects when it
    has none); :class:`SceneFormatError` for any other shape."""
    rasters = asset.get("raster:bands")
    if rasters is None:
        return [{}] * count
    if not isinstance(rasters, list) or not all(isinstance(r, Mapping) for r in rasters):
        raise SceneFormatError(
            f"asset {key!r} of STAC item {item.get('id')}: raster:bands must be a list of "
            f"objects, one per band, not {json.dumps(rasters)[:80]}; fix the item"
        )
    return rasters


def _is_jp2(entry: tuple[str, Any]) -> bool:
    key, asset = entry
    media = str(asset.get("type") or "") if isinstance(asset, Mapping) else ""
    return "jp2" in key.lower() or "jp2" in media.lower()


def band_assets(
    item: Mapping[str, Any], base: Path, *, remote_files: bool = False
) -> tuple[list[BandAsset], list[str]]:
    """Band assets with local files (first asset per band wins, COGs before JPEG 2000) and
    the bands only at URLs; with ``remote_files`` the URLs are band assets too."""
    found: dict[str, BandAsset] = {}
    remote: list[str] = []
    for key, asset in sorted(item["assets"].items(), key=_is_jp2):
        if not isinstance(asset, Mapping) or not _is_band_asset(key, asset):
            continue
        entries = _band_entries(asset)
        rasters = _raster_entries(item, key, asset, len(entries))
        href = str(asset.get("href", ""))
        path = local_path(href, base)
        for index, (entry, raster) in enumerate(zip(entries, rasters, strict=False), start=1):
            band = identify_band(key, entry)
            if band is None or band in found:
                continue
            if path is None and remote_files and is_remote(href):
                found[band] = BandAsset(band, href, index, raster)
                continue
            if path is None:
                remote.append(band)
                continue
            if not path.exists():
                raise SceneFormatError(
                    f"asset {key!r} of STAC item {item.get('id')} points at {path}, which does not "
                    "exist; download the asset or fix its href"
                )
            found[band] = BandAsset(band, str(path), index, raster)
    return list(found.values()), sorted(set(remote) - set(found))


def item_level(properties: Mapping[str, Any]) -> str | None:
    """``L1C``/``L2A`` from ``processing:level`` or ``s2:product_type``, None if unknown."""
    level = str(properties.get("processing:level") or "").upper()
    if level in ("L1C", "L2A"):
        return level
    return PRODUCT_TYPE_LEVELS.get(str(properties.get("s2:product_type") or "").upper())


def item_sun_angles(properties: Mapping[str, Any], where: str = "the item") -> SunAngles | None:
    """Mean sun angles from the ``view`` extension or the ``s2`` extension's means
    (:class:`SceneFormatError` naming ``where`` for values that are not possible angles)."""
    if "view:sun_elevation" in properties and "view:sun_azimuth" in properties:
        source = f"{where} view:sun_elevation/azimuth"
        # an elevation has the range of a zenith angle: check it as one, then convert
        angles = sun_angles(
            properties["view:sun_elevation"], properties["view:sun_azimuth"], source
        )
        return replace(angles, sun_zenith=90.0 - angles.sun_zenith)
    if "s2:mean_solar_zenith" in properties and "s2:mean_solar_azimuth" in properties:
        return sun_angles(
            properties["s2:mean_solar_zenith"],
            properties["s2:mean_solar_azimuth"],
            f"{where} s2:mean_solar_zenith/azimuth",
        )
    return None


def offset_applied(properties: Mapping[str, Any]) -> bool | None:
    """Whether the item says the baseline 04.00 offset is already in its values
    (``earthsearch:boa_offset_applied``), None when it does not say."""
    for key in OFFSET_APPLIED_KEYS:
        value = properties.get(key)
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
    return None


def item_radiometry(
    assets: Sequence[BandAsset], properties: Mapping[str, Any], level: str | None, scale: str | None
) -> Radiometry:
    """How the band files' values become reflectance (see the module docstring for the order).

    The baseline 04.00 offset (-1000 DN) is applied exactly once: not at all when
    ``earthsearch:boa_offset_applied`` is true (the values were shifted when the COGs were
    made, and the item's ``raster:bands`` offset describes the original product).
    """
    if scale == "reflectance":
        return Radiometry(kind="reflectance", level=level)
    scales = {float(a.raster["scale"]) for a in assets if "scale" in a.raster}
    if len(scales) > 1:
        raise SceneFormatError(
            f"band assets have different raster:bands scales {sorted(scales)}; s2clouds needs one "
            "quantification value per scene (fix the item or give scale=)"
        )
    applied = offset_applied(properties)
    baseline = properties.get("s2:processing_baseline")
    quantification = 1.0 / next(iter(scales)) if scales else DEFAULT_QUANTIFICATION
    if applied:
        text = None if baseline is None else str(baseline)
        return Radiometry(kind="dn", quantification=quantification, level=level, baseline=text)
    if applied is False and baseline is not None:
        found = radiometry_for_baseline(str(baseline), level)
        return replace(found, quantification=quantification)
    if scales:
        factor = scales.pop()
        offsets = {a.band: float(a.raster.get("offset", 0.0)) / factor for a in assets}
        return Radiometry(kind="dn", quantification=1.0 / factor, offsets=offsets, level=level)
    baseline = properties.get("s2:processing_baseline")
    if baseline is not None:
        return radiometry_for_baseline(str(baseline), level)
    float_data = any(str(a.raster.get("data_type", "")).startswith("float") for a in assets)
    kind = "reflectance" if float_data and scale is None else "dn"
    return Radiometry(kind=kind, level=level)


def _checked_radiometry(
    path: Path,
    assets: Sequence[BandAsset],
    properties: Mapping[str, Any],
    level: str | None,
    scale: str | None,
) -> Radiometry:
    """:func:`item_radiometry`, with scales and offsets that are not usable numbers (text,
    0, NaN, huge) refused as :class:`SceneFormatError` naming the item."""
    try:
        return item_radiometry(assets, properties, level, scale)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        reason = str(exc) if isinstance(exc, RadiometryError) else f"{type(exc).__name__}: {exc}"
        raise SceneFormatError(
            f"{path}: the raster:bands scale and offset do not give reflectance ({reason}); "
            "fix them in the item, or give scale=reflectance for reflectance files"
        ) from exc


def _check_level(path: Path, given: str | None, found: str | None) -> str | None:
    given = given.upper() if given else None
    if given and found and given != found:
        raise SceneFormatError(
            f"{path} is a {found} item but level {given} was given; drop level= or fix it"
        )
    return given or found


def read_stac_item(
    path: str | Path,
    *,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    scale: str | None = None,
    level: str | None = None,
    sign: str | None = None,
) -> Scene:
    """A lazy :class:`Scene` from a STAC item JSON whose band assets are local or remote files.

    ``bands`` selects bands (any spelling); ``resolution`` (10, 20 or 60 m) chooses the grid
    (default: the finest band's); ``scale`` (``"dn"``/``"reflectance"``) overrides the
    radiometry found in the item; ``level`` must agree with the item's when both are known.
    ``sign`` names the signing hook of remote hrefs (``module:function``, an entry point or
    ``planetary-computer``; default ``$S2CLOUDS_SIGN``), run each time a file is opened.
    Raises :class:`SceneFormatError` for files that are not items or assets that are missing,
    :class:`~s2clouds.errors.RemoteReadError` for remote files that cannot be read, and
    :class:`~s2clouds.errors.CRSMismatchError` for bands of different tiles.
    """
    path = Path(path)
    if resolution is not None and resolution not in (10, 20, 60):
        raise SceneFormatError(f"resolution must be 10, 20 or 60 m, not {resolution}")
    item = load_item(path)
    properties = item_properties(item)
    assets, remote = band_assets(item, path.parent)
    if not assets:  # nothing downloaded: read the remote files
        assets, _ = band_assets(item, path.parent, remote_files=True)
        remote = []
    if not assets:
        raise SceneFormatError(
            f"STAC item {path} has no band files (no asset is a Sentinel-2 band at a local path "
            "or an http(s)/s3 URL); fix the item's assets"
        )
    sign = signer_name(sign) if any(is_remote(a.path) for a in assets) else None
    files = (str(path), *(a.path for a in assets))
    if bands:
        wanted = canonical_band_names(bands)
        by_band = {a.band: a for a in assets}
        assets = [by_band[b] for b in wanted if b in by_band]
    assets.sort(key=lambda a: [b.name for b in MSI_BANDS].index(a.band))
    found_level = _check_level(path, level, item_level(properties))
    # one header per file: the bands of a multi-band asset share it
    grid = common_grid(list(dict.fromkeys(a.path for a in assets)), resolution, sign)
    scene = Scene(
        sources=tuple(
            RasterBand(
                a.band,
                a.path,
                a.index,
                a.raster.get("nodata", 0),
                sign if is_remote(a.path) else None,
            )
            for a in assets
        ),
        grid=grid,
        radiometry=_checked_radiometry(path, assets, properties, found_level, scale),
        angles=item_sun_angles(properties, str(path)),
        level=found_level,
        product_id=str(item.get("id") or path.stem),
        meta={
            "path": str(path),
            "files": files,
            "stac_id": item.get("id"),
            "remote_bands": remote,
        },
    )
    return scene.select(bands) if bands else scene
