"""Read Sentinel-2 ``.SAFE`` products (L1C and L2A, folder or zip) as a :class:`Scene`.

A compact-SAFE product (the format since December 2016) holds

* ``MTD_MSIL1C.xml`` or ``MTD_MSIL2A.xml`` at its root: level, processing baseline,
  quantification value, per-band radiometric offsets, the no-data value and the list of image
  files (``Product_Organisation/Granule_List/Granule/IMAGE_FILE``);
* one granule ``GRANULE/<id>/`` with ``MTD_TL.xml`` (tile geocoding, sensing time, mean sun
  and viewing angles) and ``IMG_DATA/`` with one JPEG 2000 file per band (L1C:
  ``T32TQM_20220105T103329_B02.jp2``; L2A: ``R10m/T32TQM_20220105T103329_B02_10m.jp2`` and the
  same band again at coarser resolutions).

:func:`read_safe` parses the metadata and returns a lazy :class:`Scene` whose sources are the
spectral bands at their native resolution; nothing is extracted from a zip, bands are read
through GDAL's ``/vsizip/`` paths when :meth:`Scene.read` is called.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from xml.etree import ElementTree as ET

from s2clouds.bands import MSI_BAND_NAMES, band_info
from s2clouds.errors import RadiometryError, SceneFormatError
from s2clouds.io.bands import RasterBand
from s2clouds.io.grid import Grid
from s2clouds.io.headers import common_grid
from s2clouds.io.limits import read_bounded
from s2clouds.io.scene import Scene
from s2clouds.io.sun import SunAngles, sun_angles, sun_angles_from_tags
from s2clouds.radiometry import Radiometry, radiometry_for_baseline

#: product metadata file name -> processing level
PRODUCT_METADATA: dict[str, str] = {"MTD_MSIL1C.xml": "L1C", "MTD_MSIL2A.xml": "L2A"}
TILE_METADATA = "MTD_TL.xml"

#: spellings accepted for the ``level`` argument -> canonical level
LEVEL_ALIASES: dict[str, str] = {
    "L1C": "L1C", "1C": "L1C", "LEVEL-1C": "L1C", "LEVEL1C": "L1C", "S2MSI1C": "L1C", "TOA": "L1C",
    "L2A": "L2A", "2A": "L2A", "LEVEL-2A": "L2A", "LEVEL2A": "L2A", "S2MSI2A": "L2A", "BOA": "L2A",
}  # fmt: skip


@dataclass(frozen=True)
class _LevelTags:
    """Metadata element names that differ between L1C and L2A product metadata."""

    quantification: tuple[str, ...]
    offset: str


_LEVEL_TAGS: dict[str, _LevelTags] = {
    "L1C": _LevelTags(("QUANTIFICATION_VALUE",), "RADIO_ADD_OFFSET"),
    "L2A": _LevelTags(
        ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"), "BOA_ADD_OFFSET"
    ),
}

# ``..._B02``, ``..._B8A_20m``, ``..._SCL_60m``, ``..._TCI``: layer and optional resolution.
_IMAGE_NAME = re.compile(r"_(?P<layer>B\d{2}|B8A|TCI|AOT|WVP|SCL)(?:_(?P<res>\d{2})m)?$")
_IMAGE_GLOBS = ("GRANULE/*/IMG_DATA/*.jp2", "GRANULE/*/IMG_DATA/R*m/*.jp2")
_SPACECRAFT = re.compile(r"Sentinel-?2([A-D])", re.IGNORECASE)
_PRODUCT_NAME_SPACECRAFT = re.compile(r"^(S2[A-D])_")
_MGRS_TILE = re.compile(r"_(T\d{2}[A-Z]{3})_")


# ---------------------------------------------------------------------------------------------
# access to the files of a product, in a folder or a zip


class _ProductFiles(Protocol):
    """The files of one product: POSIX paths relative to the ``.SAFE`` root."""

    @property
    def source(self) -> Path: ...

    @property
    def names(self) -> tuple[str, ...]: ...

    def read_bytes(self, name: str) -> bytes: ...

    def raster_path(self, name: str) -> str: ...


@dataclass(frozen=True)
class _FolderFiles:
    source: Path
    names: tuple[str, ...]

    @classmethod
    def open(cls, folder: Path) -> _FolderFiles:
        names = tuple(
            sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        )
        return cls(folder, names)

    def read_bytes(self, name: str) -> bytes:
        with open(self.source / name, "rb") as handle:
            return read_bounded(handle, f"{name} in {self.source}")

    def raster_path(self, name: str) -> str:
        return str(self.source / name)


@dataclass(frozen=True)
class _ZipFiles:
    source: Path
    names: tuple[str, ...]
    prefix: str  # folder of the product inside the zip, e.g. ``S2B_MSIL1C_....SAFE/``

    @classmethod
    def open(cls, archive: Path) -> _ZipFiles:
        try:
            with zipfile.ZipFile(archive) as zf:
                members = zf.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise SceneFormatError(
                f"{archive} is not a readable zip file ({exc}); the download is incomplete or "
                "damaged. Download it again, or unzip it and give the .SAFE folder"
            ) from exc
        prefix = _zip_product_prefix(archive, members)
        names = tuple(
            m[len(prefix) :] for m in members if m.startswith(prefix) and not m.endswith("/")
        )
        return cls(archive, names, prefix)

    def read_bytes(self, name: str) -> bytes:
        try:
            with zipfile.ZipFile(self.source) as zf, zf.open(self.prefix + name) as member:
                return read_bounded(member, f"{name} in {self.source}")
        except (zipfile.BadZipFile, OSError) as exc:  # zlib errors and CRC failures
            raise SceneFormatError(
                f"cannot read {name} from {self.source} ({exc}); the zip is damaged, download it again"
            ) from exc

    def raster_path(self, name: str) -> str:
        return f"/vsizip/{self.source.resolve().as_posix()}/{self.prefix}{name}"


def _zip_product_prefix(archive: Path, members: Iterable[str]) -> str:
    """The folder inside ``archive`` that holds the product metadata (the shallowest one)."""
    candidates = [m for m in members if PurePosixPath(m).name in PRODUCT_METADATA]
    if not candidates:
        raise _no_metadata_error(archive)
    shallowest = min(candidates, key=lambda m: m.count("/"))
    return shallowest[: -len(PurePosixPath(shallowest).name)]


def _open_product(path: Path) -> _ProductFiles:
    if path.is_dir():
        return _FolderFiles.open(path)
    if path.is_file():
        return _ZipFiles.open(path)
    raise SceneFormatError(f"input not found: {path}; give a .SAFE folder or a downloaded .zip")


def _no_metadata_error(path: Path) -> SceneFormatError:
    return SceneFormatError(
        f"{path} has no MTD_MSIL1C.xml or MTD_MSIL2A.xml at its root, so it is not a complete "
        "Sentinel-2 L1C/L2A product (compact SAFE, produced since December 2016). Download the "
        "product again, or give the .SAFE folder that holds the metadata file"
    )


def _matching(names: Iterable[str], pattern: str) -> list[str]:
    """Names matching a glob ``pattern`` with the same number of path parts (``*`` stays in one part)."""
    depth = len(PurePosixPath(pattern).parts)
    return [
        n for n in names if len(PurePosixPath(n).parts) == depth and PurePosixPath(n).match(pattern)
    ]


# ---------------------------------------------------------------------------------------------
# XML helpers: element names are matched in any (or no) namespace, as products differ


def _parse_xml(files: _ProductFiles, name: str) -> ET.Element:
    try:
        return ET.fromstring(files.read_bytes(name))
    except ET.ParseError as exc:
        raise SceneFormatError(
            f"{name} in {files.source} is not valid XML ({exc}); the product is damaged, download it again"
        ) from exc


def _find_text(root: ET.Element, tag: str) -> str | None:
    element = root.find(f".//{{*}}{tag}")
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


def _child_number(element: ET.Element, tag: str, where: str) -> float:
    text = _find_text(element, tag)
    if text is None:
        raise SceneFormatError(
            f"{where} lacks {tag}; the metadata is damaged, download the product again"
        )
    return _number(text, tag, where)


def _number(text: str, what: str, where: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise SceneFormatError(
            f"{what} in {where} is {text!r}, not a number; the metadata is damaged, download the "
            "product again"
        ) from exc


# ---------------------------------------------------------------------------------------------
# product metadata (MTD_MSIL1C.xml / MTD_MSIL2A.xml)


@dataclass(frozen=True)
class _ProductMetadata:
    """What s2clouds uses from ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``.

    ``radiometry`` turns DN into reflectance (quantification value and per-band offsets in DN);
    ``nodata`` is the DN that marks pixels outside the swath; ``image_files`` are the listed
    ``IMAGE_FILE`` entries (paths relative to the SAFE root, usually without ``.jp2``).
    """

    metadata_file: str
    level: str
    baseline: str | None
    radiometry: Radiometry
    nodata: float
    image_files: tuple[str, ...]
    spacecraft: str | None
    start_time: str | None
    cloud_cover: float | None


def _product_metadata_name(files: _ProductFiles) -> str:
    present = [name for name in PRODUCT_METADATA if name in files.names]
    if not present:
        raise _no_metadata_error(files.source)
    if len(present) > 1:
        raise SceneFormatError(
            f"{files.source} holds both MTD_MSIL1C.xml and MTD_MSIL2A.xml; a product is one "
            "level. Keep the metadata file of the level the images are"
        )
    return present[0]


def _read_product_metadata(files: _ProductFiles) -> _ProductMetadata:
    """Parse the product metadata at the root of ``files``."""
    name = _product_metadata_name(files)
    level = PRODUCT_METADATA[name]
    root = _parse_xml(files, name)
    where = f"{files.source}/{name}"
    baseline = _find_text(root, "PROCESSING_BASELINE")
    quantification = _quantification(root, _LEVEL_TAGS[level], where)
    offsets = _band_offsets(root, _LEVEL_TAGS[level].offset, where)
    # The baseline implies the offset only where the metadata lists none (never after 04.00).
    try:
        radiometry = replace(
            radiometry_for_baseline(baseline, level), quantification=quantification
        )
        if offsets:
            radiometry = replace(radiometry, offsets=offsets)
    except RadiometryError as exc:
        raise RadiometryError(f"{where}: {exc}; download the product again") from exc
    cloud = _find_text(root, "Cloud_Coverage_Assessment")
    return _ProductMetadata(
        metadata_file=name,
        level=level,
        baseline=baseline,
        radiometry=radiometry,
        nodata=_nodata_value(root, where),
        image_files=tuple(e.text.strip() for e in root.iterfind(".//{*}IMAGE_FILE") if e.text),
        spacecraft=_spacecraft(_find_text(root, "SPACECRAFT_NAME"), files.source.name),
        start_time=_find_text(root, "PRODUCT_START_TIME"),
        cloud_cover=_number(cloud, "Cloud_Coverage_Assessment", where) if cloud else None,
    )


def _quantification(root: ET.Element, tags: _LevelTags, where: str) -> float:
    for tag in tags.quantification:
        text = _find_text(root, tag)
        if text is not None:
            return _number(text, tag, where)
    raise SceneFormatError(
        f"{where} has no {' or '.join(tags.quantification)}, so DN cannot be converted to "
        "reflectance; the metadata is damaged, download the product again"
    )


def _band_offsets(root: ET.Element, tag: str, where: str) -> dict[str, float]:
    """``{band: offset}`` from ``<tag band_id="0..12">``; band_id counts B01..B08, B8A, B09..B12."""
    offsets = {}
    for element in root.iterfind(f".//{{*}}{tag}"):
        band_id = element.get("band_id", "")
        if not band_id.isdigit() or int(band_id) >= len(MSI_BAND_NAMES):
            raise SceneFormatError(
                f"{where}: {tag} has band_id={band_id!r}; expected 0..{len(MSI_BAND_NAMES) - 1}. "
                "The metadata is damaged, download the product again"
            )
        offsets[MSI_BAND_NAMES[int(band_id)]] = _number(element.text or "", tag, where)
    return offsets


def _nodata_value(root: ET.Element, where: str) -> float:
    """The ``Special_Values`` NODATA index; 0 (the Sentinel-2 convention) when not listed."""
    for special in root.iterfind(".//{*}Special_Values"):
        if (_find_text(special, "SPECIAL_VALUE_TEXT") or "").upper() == "NODATA":
            return _child_number(special, "SPECIAL_VALUE_INDEX", where)
    return 0.0


def _spacecraft(name: str | None, product_name: str) -> str | None:
    """``S2A``/``S2B``/``S2C`` from ``SPACECRAFT_NAME`` (``Sentinel-2B``) or the product name."""
    if name and (match := _SPACECRAFT.search(name)):
        return f"S2{match.group(1).upper()}"
    match = _PRODUCT_NAME_SPACECRAFT.match(product_name)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------
# tile metadata (GRANULE/<id>/MTD_TL.xml)


@dataclass(frozen=True)
class _TileMetadata:
    """What s2clouds uses from ``GRANULE/<id>/MTD_TL.xml``.

    Angles are in degrees, azimuths clockwise from north; the view angles are the means over
    the bands' ``Mean_Viewing_Incidence_Angle`` entries (azimuth as a circular mean).
    """

    metadata_file: str
    granule_id: str | None
    sensing_time: str | None
    crs_code: str | None
    angles: SunAngles | None


def _tile_metadata_name(files: _ProductFiles) -> str:
    found = _matching(files.names, f"GRANULE/*/{TILE_METADATA}")
    if not found:
        raise SceneFormatError(
            f"{files.source} has no GRANULE/<granule>/MTD_TL.xml; the product is incomplete, "
            "download it again"
        )
    if len(found) > 1:
        raise SceneFormatError(
            f"{files.source} holds {len(found)} granules; s2clouds reads single-tile products "
            "(compact SAFE, since December 2016). Split the product per tile"
        )
    return found[0]


def _read_tile_metadata(files: _ProductFiles) -> _TileMetadata:
    """Parse the granule's ``MTD_TL.xml``."""
    name = _tile_metadata_name(files)
    root = _parse_xml(files, name)
    return _TileMetadata(
        metadata_file=name,
        granule_id=_find_text(root, "TILE_ID"),
        sensing_time=_find_text(root, "SENSING_TIME"),
        crs_code=_find_text(root, "HORIZONTAL_CS_CODE"),
        angles=_mean_angles(root, f"{files.source}/{name}"),
    )


def _mean_angles(root: ET.Element, where: str) -> SunAngles | None:
    sun = root.find(".//{*}Tile_Angles/{*}Mean_Sun_Angle")
    if sun is None:
        return None
    views = list(
        root.iterfind(".//{*}Mean_Viewing_Incidence_Angle_List/{*}Mean_Viewing_Incidence_Angle")
    )
    zeniths = _finite(_find_text(v, "ZENITH_ANGLE") for v in views)
    azimuths = _finite(_find_text(v, "AZIMUTH_ANGLE") for v in views)
    angles = sun_angles(
        _child_number(sun, "ZENITH_ANGLE", where), _child_number(sun, "AZIMUTH_ANGLE", where), where
    )
    return replace(
        angles,
        view_zenith=sum(zeniths) / len(zeniths) if zeniths else None,
        view_azimuth=circular_mean_degrees(azimuths) if azimuths else None,
        source="MTD_TL.xml",
    )


def _finite(texts: Iterable[str | None]) -> list[float]:
    """The finite numbers among ``texts`` (real products write ``NaN`` for missing detectors)."""
    values = []
    for text in texts:
        try:
            value = float(text) if text is not None else math.nan
        except ValueError:
            continue
        if math.isfinite(value):
            values.append(value)
    return values


def circular_mean_degrees(angles: Iterable[float]) -> float:
    """Mean direction of ``angles`` (degrees) in [0, 360): the mean of 350 and 10 is 0."""
    radians = [math.radians(a) for a in angles]
    sin = sum(math.sin(r) for r in radians)
    cos = sum(math.cos(r) for r in radians)
    return math.degrees(math.atan2(sin, cos)) % 360.0


# ---------------------------------------------------------------------------------------------
# image files


@dataclass(frozen=True)
class _ImageFile:
    """One JPEG 2000 image of the product: its ``name`` (relative path), layer and resolution (m)."""

    name: str
    layer: str
    resolution: int


def _parse_image_name(name: str) -> _ImageFile | None:
    """Layer and resolution from ``.../T32TQM_20220105T103329_B8A_20m.jp2`` (None: not an image)."""
    match = _IMAGE_NAME.search(PurePosixPath(name).stem)
    if match is None:
        return None
    layer = match.group("layer")
    resolution = int(match.group("res")) if match.group("res") else band_info(layer).resolution
    return _ImageFile(name, layer, resolution)


def _existing_file(known: frozenset[str], entry: str) -> str | None:
    """The file an ``IMAGE_FILE`` entry names (entries usually omit ``.jp2``); None if absent.

    ``known``: the product's file names, built once per product.
    """
    return next((c for c in (entry, f"{entry}.jp2") if c in known), None)


def _list_image_files(files: _ProductFiles, product: _ProductMetadata) -> list[_ImageFile]:
    """Every band/layer image of the product, from ``IMAGE_FILE`` entries, else by file name.

    Listed entries keep their name even when the file is absent (see :func:`_require_files`),
    so that a trimmed duplicate (e.g. ``B02_60m``) does not matter but a missing band does.
    """
    if product.image_files:
        known = frozenset(files.names)
        names = [_existing_file(known, e) or e for e in product.image_files]
    else:
        names = [n for pattern in _IMAGE_GLOBS for n in _matching(files.names, pattern)]
    return [image for name in names if (image := _parse_image_name(name)) is not None]


def _require_files(files: _ProductFiles, images: Iterable[_ImageFile], metadata_file: str) -> None:
    known = set(files.names)
    missing = [image.name for image in images if image.name not in known]
    if missing:
        raise SceneFormatError(
            f"{files.source}: image file(s) {', '.join(m + '.jp2' for m in missing)}, listed in "
            f"{metadata_file}, are missing; the product is incomplete. Download it again (or "
            "unzip it again if extraction was interrupted)"
        )


def _native_images(images: Iterable[_ImageFile]) -> dict[str, _ImageFile]:
    """One image per layer: the one at the layer's native resolution, else the finest one."""
    chosen: dict[str, _ImageFile] = {}
    for image in images:
        native = band_info(image.layer).resolution
        current = chosen.get(image.layer)
        rank = (image.resolution != native, image.resolution)
        if current is None or rank < (current.resolution != native, current.resolution):
            chosen[image.layer] = image
    return chosen


# ---------------------------------------------------------------------------------------------
# the scene


def safe_product_id(path: Path) -> str:
    """Product id: the name without ``.zip`` and ``.SAFE`` (``S2B_MSIL1C_..._20220105T111906``)."""
    name = path.name
    for suffix in (".zip", ".safe"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _canonical_level(level: str) -> str:
    key = level.strip().upper().replace("_", "-")
    if key not in LEVEL_ALIASES:
        raise SceneFormatError(f"unknown processing level {level!r}; use 'L1C' or 'L2A'")
    return LEVEL_ALIASES[key]


def _check_level(actual: str, asked: str | None, product_id: str) -> None:
    if asked is None:
        return
    wanted = _canonical_level(asked)
    if wanted != actual:
        raise SceneFormatError(
            f"{product_id} is an {actual} product but level {wanted} was asked; leave the level "
            f"out to read it as {actual}, or give an {wanted} product"
        )


def _product_grid(paths: list[str], resolution: float | None, product_id: str) -> Grid:
    try:
        return common_grid(paths, resolution)
    except SceneFormatError as exc:
        raise SceneFormatError(
            f"{product_id}: {exc}. A band file of the product is damaged; download the product again"
        ) from exc


def read_safe(
    path: str | Path, *, resolution: float | None = None, level: str | None = None
) -> Scene:
    """Open a Sentinel-2 L1C/L2A ``.SAFE`` folder or ``.zip`` as a lazy :class:`Scene`.

    Sources are the spectral bands present (L1C: B01..B12 and B8A; L2A: no B10), each from its
    native-resolution file, as uint16 DN with the product's radiometry (``QUANTIFICATION_VALUE``
    or ``BOA_QUANTIFICATION_VALUE`` and per-band ``RADIO_ADD_OFFSET``/``BOA_ADD_OFFSET``), so
    :meth:`Scene.read` returns reflectance ``(C, H, W)`` float32 with NaN outside the swath.
    ``resolution`` (10, 20 or 60 m) chooses the grid, default the finest band's; ``level``
    (``"L1C"``/``"L2A"``) refuses a product of the other level. ``scene.meta`` holds the
    sensing time, MGRS tile, granule id, spacecraft, baseline, cloud cover and, under
    ``"extra_layers"``, raster paths of the non-spectral layers (``SCL``, ``AOT``, ``WVP``,
    ``TCI``) at their native resolution.

    Raises :class:`SceneFormatError` for a missing or damaged metadata file, zip or band file,
    and for a level that does not match.
    """
    path = Path(path)
    product_id = safe_product_id(path)
    files = _open_product(path)
    product = _read_product_metadata(files)
    _check_level(product.level, level, product_id)
    tile = _read_tile_metadata(files)
    images = _native_images(_list_image_files(files, product))
    spectral = [images[band] for band in MSI_BAND_NAMES if band in images]
    _require_files(files, spectral, product.metadata_file)
    if not spectral:
        raise SceneFormatError(
            f"{path} holds no band image (GRANULE/*/IMG_DATA/...B02.jp2 and so on); the product "
            "is incomplete, download it again"
        )
    raster_paths = [files.raster_path(image.name) for image in spectral]
    grid = _product_grid(raster_paths, resolution, product_id)
    sources = tuple(
        RasterBand(image.layer, raster_path, 1, product.nodata)
        for image, raster_path in zip(spectral, raster_paths, strict=True)
    )
    return Scene(
        sources=sources,
        grid=grid,
        radiometry=product.radiometry,
        angles=_scene_angles(tile, tile.sensing_time or product.start_time, grid),
        level=product.level,
        product_id=product_id,
        meta=_scene_meta(path, files, product, tile, images),
    )


def _scene_angles(tile: _TileMetadata, sensing_time: str | None, grid: Grid) -> SunAngles | None:
    """The granule's mean angles, else the solar position at the sensing time and tile centre."""
    if tile.angles is not None or sensing_time is None:
        return tile.angles
    return sun_angles_from_tags({"ACQUISITION_DATE": sensing_time}, grid)


def _scene_meta(
    path: Path,
    files: _ProductFiles,
    product: _ProductMetadata,
    tile: _TileMetadata,
    images: dict[str, _ImageFile],
) -> dict[str, Any]:
    tile_match = _MGRS_TILE.search(path.name) or _MGRS_TILE.search(tile.granule_id or "")
    present = set(files.names)
    extras = {
        layer: files.raster_path(image.name)
        for layer, image in images.items()
        if not band_info(layer).spectral and image.name in present
    }
    return {
        "path": str(path),
        "files": tuple(files.raster_path(n) for n in files.names) if path.is_dir() else (),
        "format": "SAFE",
        "level": product.level,
        "processing_baseline": product.baseline,
        "spacecraft": product.spacecraft,
        "sensing_time": tile.sensing_time or product.start_time,
        "tile_id": tile_match.group(1) if tile_match else None,
        "granule_id": tile.granule_id,
        "crs": tile.crs_code,
        "cloud_cover": product.cloud_cover,
        "nodata": product.nodata,
        "extra_layers": extras,
    }
