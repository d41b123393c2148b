"""Write a tiny SEN12MS tree in the dataset's real on-disk layout and formats.

Layout: ``ROIs<seed>_<season>/{s1,s2,lc}_<scene>/ROIs<seed>_<season>_{s1,s2,lc}_<scene>_p<patch>.tif``
with GeoTIFFs in a UTM CRS at 10 m: s1 2 bands float32 (VV, VH in dB), s2 13 bands uint16 DN
(B01..B12 with B8A after B08), lc 4 bands uint16 (IGBP, LCCS land cover, LCCS land use,
LCCS surface hydrology; 255 = no data). Patches are ``SIZE`` pixels square instead of 256 to
stay small. ``seasons.csv`` (columns ``roi,scene,season``) gives the climatic season.

Usage: ``write(tmp_path)`` returns ``{(roi_folder, scene, patch): {"s1": array, "s2": array,
"lc": array}}`` with the arrays written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 32
#: (roi folder, scene, patches)
PATCHES: list[tuple[str, int, tuple[int, ...]]] = [
    ("ROIs1158_spring", 1, (30, 31)),
    ("ROIs1158_spring", 2, (5,)),
    ("ROIs1868_summer", 7, (100, 101)),
    ("ROIs2017_winter", 4, (12,)),
]
#: climatic season per (roi folder, scene), as written to seasons.csv
CLIMATIC = {
    ("ROIs1158_spring", 1): "spring",
    ("ROIs1158_spring", 2): "fall",
    ("ROIs1868_summer", 7): "winter",
    ("ROIs2017_winter", 4): "winter",
}
IGBP_VALUES = np.arange(1, 18)
CRS = "EPSG:32633"


def patch_path(root: Path, roi: str, sensor: str, scene: int, patch: int) -> Path:
    """Where SEN12MS keeps one patch file."""
    return root / roi / f"{sensor}_{scene}" / f"{roi}_{sensor}_{scene}_p{patch}.tif"


def _write_tif(path: Path, array: np.ndarray, origin: tuple[float, float]) -> None:
    import rasterio
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "count": array.shape[0],
        "height": array.shape[1],
        "width": array.shape[2],
        "dtype": array.dtype.name,
        "crs": CRS,
        "transform": Affine(10.0, 0.0, origin[0], 0.0, -10.0, origin[1]),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


def make_patch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrays of one triplet: s1 (2, H, W) float32 dB, s2 (13, H, W) uint16, lc (4, H, W) uint16."""
    s1 = rng.normal(-12.0, 4.0, size=(2, SIZE, SIZE)).astype(np.float32)
    s2 = rng.integers(100, 5000, size=(13, SIZE, SIZE), dtype=np.uint16)
    lc = np.stack(
        [
            rng.choice(IGBP_VALUES, size=(SIZE, SIZE)),
            rng.choice([1, 2, 3, 11, 21, 31, 41], size=(SIZE, SIZE)),
            rng.choice([1, 2, 3, 9, 10, 20, 36], size=(SIZE, SIZE)),
            rng.choice([1, 2, 3, 10, 27, 51], size=(SIZE, SIZE)),
        ]
    ).astype(np.uint16)
    lc[:, 0, :3] = 255  # a few no-data pixels
    return {"s1": s1, "s2": s2, "lc": lc}


def write(
    root: Path, *, seed: int = 0, seasons_csv: bool = True
) -> dict[tuple[str, int, int], dict[str, np.ndarray]]:
    """Write every patch of :data:`PATCHES` (and seasons.csv) under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    written = {}
    for roi, scene, patches in PATCHES:
        for patch in patches:
            arrays = make_patch(rng)
            origin = (400000.0 + 1280.0 * patch, 5000000.0 - 1280.0 * scene)
            for sensor, array in arrays.items():
                _write_tif(patch_path(root, roi, sensor, scene, patch), array, origin)
            written[(roi, scene, patch)] = arrays
    if seasons_csv:
        rows = [f"{roi},{scene},{season}" for (roi, scene), season in CLIMATIC.items()]
        (root / "seasons.csv").write_text("roi,scene,season\n" + "\n".join(rows) + "\n")
    return written
