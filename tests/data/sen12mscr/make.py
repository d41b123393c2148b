"""Write tiny SEN12MS-CR pairs in the real layout (``SEN12MSCRPairs``' format).

``<root>/<roi>_<season>_<scene>_p<patch>/{cloudy.tif, clear.tif}``: 13-band uint16 GeoTIFFs of
L1C DN (reflectance = DN / 10000), 10 m, UTM, band names in the descriptions. The clear image
is vegetation with a brighter field; the cloudy one adds a thick cloud (a flat rise in every
band and in B10), a cirrus veil (B10 and a small visible rise) and the thick cloud's shadow
``SHADOW_OFFSET`` px away (NIR and SWIR darkened). One more pair has a snow-covered
reference (unusable: skipped by the reader).

Usage: ``write(root)`` returns ``{pair name: {"cloudy": DN, "clear": DN, "truth": labels}}``
where ``truth`` (H, W) uint8 is the canonical class drawn in (0 clear, 1 thick, 2 thin,
3 shadow).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 64
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
#: clear vegetation reflectance per band
VEGETATION = (0.12, 0.09, 0.08, 0.05, 0.1, 0.2, 0.25, 0.3, 0.32, 0.1, 0.002, 0.16, 0.08)
#: a bright snow field per band
SNOW = (0.8, 0.8, 0.78, 0.75, 0.72, 0.7, 0.68, 0.65, 0.62, 0.4, 0.004, 0.05, 0.03)
CRS = "EPSG:32632"
ORIGIN = (500000.0, 5000000.0)
PAIRS = ("ROIs0001_summer_1_p1", "ROIs0001_summer_1_p2")
SNOWY = "ROIs0002_winter_2_p1"
CLOUD = (slice(8, 28), slice(8, 28))
CIRRUS = (slice(40, 60), slice(36, 60))
SHADOW_OFFSET = (12, 14)


def spectrum(values: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """(13, SIZE, SIZE) float reflectance: ``values`` with 2 % texture."""
    base = np.asarray(values, np.float64)[:, None, None]
    return base * (1 + 0.02 * rng.standard_normal((len(values), SIZE, SIZE)))


def scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clear, cloudy) reflectance (13, SIZE, SIZE) and the truth (SIZE, SIZE) uint8."""
    clear = spectrum(VEGETATION, rng)
    clear[:, 30:40, 0:20] *= 1.6  # a brighter field, the same on both dates
    cloudy = clear * (1 + 0.005 * rng.standard_normal(clear.shape))
    truth = np.zeros((SIZE, SIZE), np.uint8)
    rows, cols = CLOUD
    dr, dc = SHADOW_OFFSET
    shadow = (slice(rows.start + dr, rows.stop + dr), slice(cols.start + dc, cols.stop + dc))
    cloudy[:, shadow[0], shadow[1]] *= 0.45
    truth[shadow] = 3
    cloudy[:, rows, cols] = 0.55
    cloudy[BANDS.index("B10"), rows, cols] = 0.05
    truth[CLOUD] = 1
    cloudy[:, CIRRUS[0], CIRRUS[1]] += 0.03
    cloudy[BANDS.index("B10"), CIRRUS[0], CIRRUS[1]] = 0.03
    truth[CIRRUS] = 2
    return clear, cloudy, truth


def write_tif(path: Path, reflectance: np.ndarray) -> np.ndarray:
    """A 13-band uint16 GeoTIFF of ``reflectance`` x 10000; returns the DN written."""
    import rasterio
    from affine import Affine

    dn = np.clip(np.round(reflectance * 10000), 1, 65535).astype(np.uint16)
    profile = {
        "driver": "GTiff",
        "count": len(BANDS),
        "height": SIZE,
        "width": SIZE,
        "dtype": "uint16",
        "crs": CRS,
        "transform": Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
        for i, band in enumerate(BANDS, start=1):
            dst.set_band_description(i, band)
    return dn


def write(root: Path, *, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Write :data:`PAIRS` (labelled) and :data:`SNOWY` (unusable) under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, np.ndarray]] = {}
    for name in PAIRS:
        clear, cloudy, truth = scene(rng)
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = {
            "clear": write_tif(folder / "clear.tif", clear),
            "cloudy": write_tif(folder / "cloudy.tif", cloudy),
            "truth": truth,
        }
    folder = root / SNOWY
    folder.mkdir(parents=True, exist_ok=True)
    write_tif(folder / "clear.tif", spectrum(SNOW, rng))
    write_tif(folder / "cloudy.tif", spectrum(VEGETATION, rng))
    return written
