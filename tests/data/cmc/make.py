"""Write a tiny Sentinel-2 Cloud Mask Catalogue in its real on-disk format.

``classification_tags.csv`` (index, scene, dataset, shadows_marked, then 0/1 tag columns),
``subscenes/<scene>.npy`` (H, W, 13) float32 TOA reflectance and ``masks/<scene>.npy``
(H, W, 3) bool one-hot CLEAR, CLOUD, CLOUD_SHADOW. Subscenes are ``SIZE`` pixels square
instead of 1022 to stay small; the reader does not depend on the size.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SIZE = 24
N_BANDS = 13
TAG_COLUMNS = (
    "forest/jungle",
    "snow/ice",
    "agricultural",
    "urban/developed",
    "coastal",
    "hills/mountains",
    "desert/barren",
    "shrublands/plains",
    "wetland/bog/marsh",
    "open_water",
    "enclosed_water",
    "cumulus",
    "cumulonimbus",
    "altocumulus/stratocumulus",
    "cirrus",
    "haze/fog",
    "ice_clouds",
    "contrails",
    "low",
    "high",
    "thin",
    "thick",
    "isolated",
    "extended",
)
#: (scene id, annotation batch, shadows marked, tags set to 1)
SCENES = (
    (
        "S2A_MSIL1C_20180101T010721_N0206_R045_T53HLD_20180101T041600",
        "MAIN",
        1,
        ("forest/jungle", "thin", "cirrus"),
    ),
    (
        "S2B_MSIL1C_20180315T102019_N0206_R065_T32TPP_20180315T123402",
        "MAIN",
        1,
        ("snow/ice", "thick", "cumulus"),
    ),
    (
        "S2A_MSIL1C_20180620T075611_N0206_R035_T36MZE_20180620T101221",
        "VALIDATION",
        0,
        ("forest/jungle", "hills/mountains", "thick"),
    ),
    (
        "S2B_MSIL1C_20181105T054039_N0207_R005_T43RFM_20181105T083413",
        "CALIBRATION",
        1,
        ("open_water", "isolated"),
    ),
)


def reflectance(number: int) -> np.ndarray:
    """(SIZE, SIZE, 13) float32: band b holds 0.05 * (b + 1) plus 0.001 * scene number."""
    levels = 0.05 * (np.arange(N_BANDS, dtype=np.float32) + 1) + 0.001 * number
    ramp = np.linspace(0.0, 0.01, SIZE, dtype=np.float32)[:, None, None]
    return (levels[None, None, :] + ramp).astype(np.float32) * np.ones((SIZE, SIZE, 1), np.float32)


def labels(number: int) -> np.ndarray:
    """(SIZE, SIZE) class index 0 clear, 1 cloud, 2 shadow, -1 for pixels with no class set."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    classes = (rows // 8 + cols // 8 + number) % 3
    classes[:2, :2] = -1
    return classes


def onehot(number: int) -> np.ndarray:
    """(SIZE, SIZE, 3) bool one-hot of :func:`labels`; unlabelled pixels have no channel set."""
    classes = labels(number)
    return np.stack([classes == c for c in range(3)], axis=-1)


def write_csv(
    path: Path, scenes: tuple[tuple[str, str, int, tuple[str, ...]], ...] = SCENES
) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "scene", "dataset", "shadows_marked", *TAG_COLUMNS])
        for n, (scene, batch, shadows, tags) in enumerate(scenes):
            writer.writerow([n, scene, batch, shadows, *(int(t in tags) for t in TAG_COLUMNS)])


def write(root: Path) -> Path:
    """Write the CSV, subscenes, masks and an empty shapefiles folder under ``root``."""
    root = Path(root)
    for folder in ("subscenes", "masks", "shapefiles"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    write_csv(root / "classification_tags.csv")
    for number, (scene, *_rest) in enumerate(SCENES):
        np.save(root / "subscenes" / f"{scene}.npy", reflectance(number))
        np.save(root / "masks" / f"{scene}.npy", onehot(number))
    return root
