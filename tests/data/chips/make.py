"""Write tiny labelled chip folders in the On Cloud N layout (``ChipFolders``' format).

``<root>/<chip>/{B02,B03,B04,B08}.tif``: single-band uint16 GeoTIFFs of L2A DN (reflectance =
DN / 10000), 10 m, UTM, nodata 0, tagged with ``TIFFTAG_DATETIME`` as the real chips are;
``<root>/<chip>/label.tif``: uint8, 0 not cloud, 1 cloud, 255 no data. Chips are ``SIZE``
pixels square instead of 512. A folder ``notes/`` without a label is written too (not a chip).

Usage: ``write(tmp_path)`` returns ``{chip name: {"B02": array, ..., "label": array}}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 16
BANDS = ("B02", "B03", "B04", "B08")
CHIPS = ("chip_a", "chip_b", "chip_c")
CRS = "EPSG:32736"
ORIGIN = (446235.0, 9705660.0)
ACQUIRED = "2020-04-24T08:20:39Z"
#: DN written at the top-left pixel of every band of the first chip (no data)
NODATA_PIXEL = (0, 0)


def band_dn(chip: int, band: str, rng: np.random.Generator) -> np.ndarray:
    """(SIZE, SIZE) uint16 DN, brighter for later bands; 0 (no data) at one pixel of chip 0."""
    dn = rng.integers(200, 3000, size=(SIZE, SIZE), dtype=np.uint16) + 500 * BANDS.index(band)
    if chip == 0:
        dn[NODATA_PIXEL] = 0
    return dn.astype(np.uint16)


def label(chip: int) -> np.ndarray:
    """(SIZE, SIZE) uint8 binary labels: cloud on the left half, a no-data corner block."""
    values = np.zeros((SIZE, SIZE), dtype=np.uint8)
    values[:, : SIZE // 2 + chip] = 1
    values[-3:, -3:] = 255
    return values


def write_tif(path: Path, array: np.ndarray, nodata: float, tags: dict[str, str]) -> None:
    """One single-band GeoTIFF of ``array`` (H, W) on the chips' 10 m UTM grid."""
    import rasterio
    from affine import Affine

    profile = {
        "driver": "GTiff",
        "count": 1,
        "height": array.shape[0],
        "width": array.shape[1],
        "dtype": array.dtype.name,
        "crs": CRS,
        "transform": Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
        dst.update_tags(**tags)


def write(root: Path, *, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Write the chips of :data:`CHIPS` (and a ``notes/`` folder) under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, np.ndarray]] = {}
    for i, chip in enumerate(CHIPS):
        folder = root / chip
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {band: band_dn(i, band, rng) for band in BANDS}
        for band, dn in arrays.items():
            write_tif(folder / f"{band}.tif", dn, 0, {"TIFFTAG_DATETIME": ACQUIRED})
        arrays["label"] = label(i)
        write_tif(folder / "label.tif", arrays["label"], 255, {})
        written[chip] = arrays
    (root / "notes").mkdir(exist_ok=True)
    (root / "notes" / "README.txt").write_text("not a chip\n")
    return written
