"""Write miniature but real-shaped Sentinel-2 ``.SAFE`` products (L1C and L2A) for tests.

The products have the folder tree, file names and metadata element paths of real compact-SAFE
products (PSD 14), and lossless JPEG 2000 band files (uint16, UTM zone 32N) at 10, 20 and 60 m
whose sizes agree (``size_10m``, ``size_10m / 2``, ``size_10m / 6`` pixels).

Pixel values are DN = reflectance * 10000 - offset, with offset -1000 from processing baseline
04.00 and 0 before. Reflectance is constant within each 60 m block (so every resolution holds
the same picture): ``BASE_REFLECTANCE[band] + ROW_STEP * block_row``. The left
``nodata_columns_60m`` 60 m columns are no data (DN 0) in every band, as at a swath edge.

Use :func:`write_safe` (or :func:`write`, the defaults) and :func:`expected_reflectance`.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import rasterio
from affine import Affine

MSI_BANDS = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip
NATIVE_RESOLUTION = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip
BASE_REFLECTANCE = {band: round(0.10 + 0.02 * i, 2) for i, band in enumerate(MSI_BANDS)}
ROW_STEP = 0.01
QUANTIFICATION = 10000
BASELINE_04_OFFSET = -1000

# Layers of a baseline 04.00 L2A product in each resolution folder (B10 is never in L2A).
L2A_LAYERS = {
    10: ("AOT", "B02", "B03", "B04", "B08", "TCI", "WVP"),
    20: ("AOT", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B11", "B12", "B8A", "SCL",
         "TCI", "WVP"),
    60: ("AOT", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B09", "B11", "B12", "B8A",
         "SCL", "TCI", "WVP"),
}  # fmt: skip

CLOUD_COVER = 12.5
SUN_ZENITH = 67.8
SUN_AZIMUTH = 162.4
VIEW_ZENITH = tuple(round(8.0 + 0.1 * i, 2) for i in range(13))  # per band_id, degrees
VIEW_AZIMUTH = tuple(284.0 if i % 2 else 288.0 for i in range(13))  # per band_id, degrees

CRS_CODE = "EPSG:32632"
ULX, ULY = 699960.0, 5000040.0
TILE = "32TQM"
SENSING = "20220105T103329"
SENSING_ISO = "2022-01-05T10:33:29.024Z"
GENERATION = "20220105T111906"
ABSOLUTE_ORBIT = "A025165"

L1C_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd"
L2A_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
L1C_TL_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-1C_Tile_Metadata.xsd"
L2A_TL_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd"


def product_name(level: str, baseline: str, spacecraft: str = "S2B") -> str:
    """``S2B_MSIL1C_20220105T103329_N0400_R108_T32TQM_20220105T111906`` (no ``.SAFE``)."""
    return (
        f"{spacecraft}_MSI{level}_{SENSING}_N{baseline.replace('.', '')}_R108_T{TILE}_{GENERATION}"
    )


def offset_for(baseline: str) -> int:
    """The additive DN offset of a baseline: -1000 from 04.00, 0 before."""
    return BASELINE_04_OFFSET if int(baseline.split(".")[0]) >= 4 else 0


def expected_reflectance(band: str, size_10m: int = 60, nodata_columns_60m: int = 1) -> np.ndarray:
    """Reflectance (H, W) float32 at 10 m that the product stores for ``band``; NaN = no data."""
    return _reflectance_at(band, size_10m, 10, nodata_columns_60m)


def write(folder: Path) -> Path:
    """A default L1C baseline 04.00 product in ``folder``; returns the ``.SAFE`` path."""
    return write_safe(folder)


def write_safe(
    folder: Path,
    level: str = "L1C",
    baseline: str = "04.00",
    size_10m: int = 60,
    zipped: bool = False,
    *,
    spacecraft: str = "S2B",
    bands: Sequence[str] | None = None,
    nodata_columns_60m: int = 1,
    band_dn: Callable[[str, int], np.ndarray] | None = None,
    jp2_options: dict[str, object] | None = None,
) -> Path:
    """Write one product into ``folder``; returns the ``.SAFE`` folder or the ``.zip`` path.

    ``level`` is ``"L1C"`` or ``"L2A"``; ``baseline`` like ``"02.09"`` or ``"04.00"``;
    ``size_10m`` (a multiple of 6) is the tile size in 10 m pixels; ``bands`` limits the
    spectral bands written (default: all of the level); ``zipped`` writes ``<name>.zip``
    holding ``<name>.SAFE/`` (as downloaded) and no folder. ``band_dn(band, resolution)``
    replaces the synthetic pictures: it returns the stored DN (H, W) uint16 of a band at
    ``resolution`` m (``size_10m * 10 // resolution`` px a side), e.g. real radiometry for a
    benchmark; ``jp2_options`` are extra JPEG 2000 creation options (e.g. ``BLOCKXSIZE``).
    """
    if level not in ("L1C", "L2A"):
        raise ValueError(f"level must be L1C or L2A, not {level!r}")
    if size_10m % 6:
        raise ValueError(f"size_10m must be a multiple of 6, not {size_10m}")
    name = product_name(level, baseline, spacecraft)
    staging = Path(folder) / (f".{name}.staging" if zipped else "")
    safe = staging / f"{name}.SAFE"
    wanted = tuple(bands) if bands is not None else MSI_BANDS
    granule = f"{level}_T{TILE}_{ABSOLUTE_ORBIT}_{SENSING}"
    image_files = _write_images(
        safe,
        granule,
        level,
        baseline,
        size_10m,
        wanted,
        nodata_columns_60m,
        band_dn=band_dn,
        jp2_options=jp2_options or {},
    )
    _write_xml(safe / f"MTD_MSI{level}.xml", _product_xml(level, baseline, spacecraft, image_files))
    _write_xml(
        safe / "GRANULE" / granule / "MTD_TL.xml", _tile_xml(level, baseline, spacecraft, size_10m)
    )
    (safe / "GRANULE" / granule / "QI_DATA").mkdir(exist_ok=True)
    (safe / "manifest.safe").write_text(
        _MANIFEST.format(name=name, level=level[1:], lower=level.lower())
    )
    if not zipped:
        return safe
    archive = Path(folder) / f"{name}.zip"
    _zip_folder(safe, archive)
    shutil.rmtree(staging)
    return archive


# ---------------------------------------------------------------------------------------------
# band files


def _reflectance_at(
    band: str, size_10m: int, resolution: int, nodata_columns_60m: int
) -> np.ndarray:
    per_block = 60 // resolution
    size = size_10m * 10 // resolution
    block_row = np.arange(size) // per_block
    column = np.arange(size) // per_block
    refl = BASE_REFLECTANCE[band] + ROW_STEP * block_row[:, None] + np.zeros((1, size))
    refl[:, column < nodata_columns_60m] = np.nan
    return refl.astype(np.float32)


def _dn(
    band: str, baseline: str, size_10m: int, resolution: int, nodata_columns_60m: int
) -> np.ndarray:
    refl = _reflectance_at(band, size_10m, resolution, nodata_columns_60m).astype(np.float64)
    dn = np.rint(refl * QUANTIFICATION - offset_for(baseline))
    return np.where(np.isnan(dn), 0, dn).astype(np.uint16)


def _extra_layer(layer: str, shape: tuple[int, int]) -> np.ndarray:
    """AOT/WVP (uint16), SCL (uint8 class 4 'vegetation') or TCI (3 x uint8)."""
    values = {
        "AOT": (np.uint16, 1, 120),
        "WVP": (np.uint16, 1, 1500),
        "SCL": (np.uint8, 1, 4),
        "TCI": (np.uint8, 3, 90),
    }
    dtype, count, value = values[layer]
    return np.full((count, *shape), value, dtype=dtype)


def _write_jp2(
    path: Path, data: np.ndarray, resolution: int, options: dict[str, object] | None = None
) -> None:
    """Lossless JPEG 2000 (C, H, W) with the tile's UTM georeference."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "JP2OpenJPEG",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": CRS_CODE,
        "transform": Affine(resolution, 0, ULX, 0, -resolution, ULY),
        "QUALITY": 100,
        "REVERSIBLE": "YES",
        "YCC": "NO",
        **(options or {}),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _layers_to_write(level: str, wanted: Sequence[str]) -> list[tuple[str, int, str]]:
    """(layer, resolution, file stem suffix) for every image file of the product."""
    if level == "L1C":
        layers = [(b, NATIVE_RESOLUTION[b], b) for b in MSI_BANDS if b in wanted]
        return [*layers, ("TCI", 10, "TCI")]
    return [
        (layer, res, f"{layer}_{res}m")
        for res, names in L2A_LAYERS.items()
        for layer in names
        if layer not in NATIVE_RESOLUTION or layer in wanted
    ]


def _write_images(
    safe: Path,
    granule: str,
    level: str,
    baseline: str,
    size_10m: int,
    wanted: Sequence[str],
    nodata_cols: int,
    *,
    band_dn: Callable[[str, int], np.ndarray] | None = None,
    jp2_options: dict[str, object],
) -> list[str]:
    """Write the JP2 files; returns their IMAGE_FILE entries (relative, without ``.jp2``)."""
    entries = []
    for layer, res, suffix in _layers_to_write(level, wanted):
        folder = f"GRANULE/{granule}/IMG_DATA" + ("" if level == "L1C" else f"/R{res}m")
        entry = f"{folder}/T{TILE}_{SENSING}_{suffix}"
        size = size_10m * 10 // res
        if layer in NATIVE_RESOLUTION and band_dn is not None:
            data = band_dn(layer, res)[None]
        elif layer in NATIVE_RESOLUTION:
            data = _dn(layer, baseline, size_10m, res, nodata_cols)[None]
        else:
            data = _extra_layer(layer, (size, size))
        _write_jp2(safe / f"{entry}.jp2", data, res, jp2_options)
        entries.append(entry)
    return entries


def _zip_folder(safe: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(safe.rglob("*")):
            zf.write(path, path.relative_to(safe.parent).as_posix())


# ---------------------------------------------------------------------------------------------
# metadata


def _sub(parent: ET.Element, tag: str, text: object = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = str(text)
    return element


def _write_xml(path: Path, root: ET.Element) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.register_namespace("n1", root.tag[1:].split("}")[0])
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


def _product_xml(level: str, baseline: str, spacecraft: str, image_files: list[str]) -> ET.Element:
    """``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml`` with the element paths of real products."""
    ns = L1C_NS if level == "L1C" else L2A_NS
    root = ET.Element(f"{{{ns}}}Level-{level[1:]}_User_Product")
    general = _sub(root, f"{{{ns}}}General_Info")
    info = _sub(general, "Product_Info")
    _sub(info, "PRODUCT_START_TIME", SENSING_ISO)
    _sub(info, "PRODUCT_STOP_TIME", SENSING_ISO)
    _sub(info, "PRODUCT_URI", product_name(level, baseline, spacecraft) + ".SAFE")
    _sub(info, "PROCESSING_LEVEL", f"Level-{level[1:]}")
    _sub(info, "PRODUCT_TYPE", f"S2MSI{level[1:]}")
    _sub(info, "PROCESSING_BASELINE", baseline)
    _sub(info, "GENERATION_TIME", "2022-01-05T11:19:06.000000Z")
    datatake = _sub(
        info, "Datatake", datatakeIdentifier=f"G{spacecraft}_{SENSING}_025165_N{baseline}"
    )
    _sub(datatake, "SPACECRAFT_NAME", f"Sentinel-{spacecraft[1:]}")
    _sub(datatake, "DATATAKE_TYPE", "INS-NOBS")
    _sub(datatake, "DATATAKE_SENSING_START", SENSING_ISO)
    _sub(datatake, "SENSING_ORBIT_NUMBER", 108)
    _sub(datatake, "SENSING_ORBIT_DIRECTION", "DESCENDING")
    options = _sub(info, "Query_Options", completeSingleTile="true")
    _sub(options, "PRODUCT_FORMAT", "SAFE_COMPACT")
    granules = _sub(_sub(info, "Product_Organisation"), "Granule_List")
    granule = _sub(
        granules,
        "Granule",
        datastripIdentifier=f"{spacecraft}_OPER_MSI_{level}_DS_2BPS_{GENERATION}_S{SENSING}_N{baseline}",
        granuleIdentifier=_tile_id(level, baseline, spacecraft),
        imageFormat="JPEG2000",
    )
    for entry in image_files:
        _sub(granule, "IMAGE_FILE", entry)
    _image_characteristics(general, level, baseline)
    quality = _sub(root, f"{{{ns}}}Quality_Indicators_Info")
    _sub(quality, "Cloud_Coverage_Assessment", CLOUD_COVER)
    return root


def _image_characteristics(general: ET.Element, level: str, baseline: str) -> None:
    chars = _sub(general, "Product_Image_Characteristics")
    for text, index in (("NODATA", 0), ("SATURATED", 65535)):
        special = _sub(chars, "Special_Values")
        _sub(special, "SPECIAL_VALUE_TEXT", text)
        _sub(special, "SPECIAL_VALUE_INDEX", index)
    offset = offset_for(baseline)
    if level == "L1C":
        _sub(chars, "QUANTIFICATION_VALUE", QUANTIFICATION, unit="none")
        offsets = _sub(chars, "Radiometric_Offset_List") if offset else None
        tag = "RADIO_ADD_OFFSET"
    else:
        values = _sub(chars, "QUANTIFICATION_VALUES_LIST")
        _sub(values, "BOA_QUANTIFICATION_VALUE", QUANTIFICATION, unit="none")
        _sub(values, "AOT_QUANTIFICATION_VALUE", "1000.0", unit="none")
        _sub(values, "WVP_QUANTIFICATION_VALUE", "1000.0", unit="cm")
        offsets = _sub(chars, "BOA_ADD_OFFSET_VALUES_LIST") if offset else None
        tag = "BOA_ADD_OFFSET"
    if offsets is not None:
        for band_id in range(len(MSI_BANDS)):
            _sub(offsets, tag, offset, band_id=str(band_id))
    spectral = _sub(chars, "Spectral_Information_List")
    for band_id, band in enumerate(MSI_BANDS):
        physical = band.replace("B0", "B")
        info = _sub(spectral, "Spectral_Information", bandId=str(band_id), physicalBand=physical)
        _sub(info, "RESOLUTION", NATIVE_RESOLUTION[band])


def _tile_id(level: str, baseline: str, spacecraft: str) -> str:
    return (
        f"{spacecraft}_OPER_MSI_{level}_TL_2BPS_{GENERATION}_{ABSOLUTE_ORBIT}_T{TILE}_N{baseline}"
    )


def _tile_xml(level: str, baseline: str, spacecraft: str, size_10m: int) -> ET.Element:
    """``GRANULE/<id>/MTD_TL.xml`` with geocoding and mean sun/view angles."""
    ns = L1C_TL_NS if level == "L1C" else L2A_TL_NS
    root = ET.Element(f"{{{ns}}}Level-{level[1:]}_Tile_ID")
    general = _sub(root, f"{{{ns}}}General_Info")
    if level == "L2A":
        _sub(general, "L1C_TILE_ID", _tile_id("L1C", baseline, spacecraft), metadataLevel="Brief")
    _sub(general, "TILE_ID", _tile_id(level, baseline, spacecraft), metadataLevel="Brief")
    _sub(general, "DOWNLINK_PRIORITY", "NOMINAL", metadataLevel="Standard")
    _sub(general, "SENSING_TIME", SENSING_ISO, metadataLevel="Standard")
    geometric = _sub(root, f"{{{ns}}}Geometric_Info")
    geocoding = _sub(geometric, "Tile_Geocoding", metadataLevel="Brief")
    _sub(geocoding, "HORIZONTAL_CS_NAME", "WGS84 / UTM zone 32N")
    _sub(geocoding, "HORIZONTAL_CS_CODE", CRS_CODE)
    for res in (10, 20, 60):
        size = _sub(geocoding, "Size", resolution=str(res))
        _sub(size, "NROWS", size_10m * 10 // res)
        _sub(size, "NCOLS", size_10m * 10 // res)
    for res in (10, 20, 60):
        position = _sub(geocoding, "Geoposition", resolution=str(res))
        for tag, value in (("ULX", int(ULX)), ("ULY", int(ULY)), ("XDIM", res), ("YDIM", -res)):
            _sub(position, tag, value)
    angles = _sub(geometric, "Tile_Angles", metadataLevel="Standard")
    sun = _sub(angles, "Mean_Sun_Angle")
    _sub(sun, "ZENITH_ANGLE", SUN_ZENITH, unit="deg")
    _sub(sun, "AZIMUTH_ANGLE", SUN_AZIMUTH, unit="deg")
    views = _sub(angles, "Mean_Viewing_Incidence_Angle_List")
    for band_id, (zenith, azimuth) in enumerate(zip(VIEW_ZENITH, VIEW_AZIMUTH, strict=True)):
        view = _sub(views, "Mean_Viewing_Incidence_Angle", bandId=str(band_id))
        _sub(view, "ZENITH_ANGLE", zenith, unit="deg")
        _sub(view, "AZIMUTH_ANGLE", azimuth, unit="deg")
    return root


_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1" version="esa/safe/sentinel/1.1/sentinel-2/msi/archive_{lower}_user_product">
  <informationPackageMap>
    <xfdu:contentUnit unitType="Product_Level-{level}" textInfo="{name}"/>
  </informationPackageMap>
</xfdu:XFDU>
"""
