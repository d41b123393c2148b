"""Write a tiny CloudSEN12 high-quality release in its real on-disk format.

Raw C-order ``np.memmap`` files ``<root>/<split>/<name>.dat`` of shape (N, 512, 512), with the
dtypes of the dataset card. The folders deliberately mix the spellings found in the wild:
``L1C_B04`` and ``L1C_B1``, ``LABEL_manual_hq`` and the card's unprefixed ``manual_hq``.

- ``test`` (3 patches): all 13 L1C bands, four L2A bands + AOT, S1_VV (float32),
  EXTRA_elevation, LABEL_manual_hq, manual_sc (scribbles), LABEL_fmask (int16) and
  LABEL_QA60 stored as int16 (the card says int8, which cannot hold its flags)
- ``val`` (1 patch): L1C and L2A B02, B03, B04, B08 and manual_hq
- ``train`` (2 patches): only L2A B02, B03, B04, B08 and manual_hq (a partial download)
- ``test/metadata.csv``: the release's per-patch table (the published header, one row per
  patch in patch order); the other splits have none

Pixel values are deterministic functions (below) so tests can compare exactly. The pad (row and
column 0, rows and columns 510-511) holds 0 in every layer.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SIZE = 512
INTERIOR = slice(1, 510)
SAMPLES = {"train": 2, "val": 1, "test": 3}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
L1C = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
RGBN = ("B02", "B03", "B04", "B08")
#: band -> spelling used in the test split's file names (the rest use the canonical name)
SHORT_SPELLING = {"B01": "B1", "B05": "B5", "B09": "B9"}
SCRIBBLE_UNLABELLED = -1
#: value outside 0-3 written in one scribble block, also to be read as unlabelled
SCRIBBLE_ODD_VALUE = 9
ROWS, COLS = np.mgrid[0:SIZE, 0:SIZE].astype(np.int32)
_RAMP = (ROWS + 2 * COLS) % 97


def band_dn(split: str, index: int, band: str) -> np.ndarray:
    """(512, 512) int16 digital numbers of one band: a per-band level plus a diagonal ramp."""
    level = 1000 + 200 * L1C.index(band) + 50 * index + 10 * SPLIT_IDS[split]
    dn = (level + _RAMP).astype(np.int16)
    return _pad(dn)


def l2a_dn(split: str, index: int, band: str) -> np.ndarray:
    """(512, 512) int16 L2A digital numbers: the L1C values shifted down by 500."""
    return _pad(band_dn(split, index, band) - np.int16(500))


def manual_hq(split: str, index: int) -> np.ndarray:
    """(512, 512) int8 CloudSEN12 labels: 128-pixel blocks cycling through classes 0-3."""
    labels = ((ROWS // 128 + COLS // 128 + index + SPLIT_IDS[split]) % 4).astype(np.int8)
    return _pad(labels)


def manual_sc(index: int) -> np.ndarray:
    """(512, 512) int8 scribbles: a few labelled strips, -1 (and a block of 9) unlabelled."""
    labels = np.full((SIZE, SIZE), SCRIBBLE_UNLABELLED, dtype=np.int8)
    labels[100:103, 50:400] = 1
    labels[200:203, 50:400] = 3
    labels[300:303, 50:400] = 0
    labels[400:410, 400:410] = SCRIBBLE_ODD_VALUE
    labels[10 + index, 10:20] = 2
    return _pad(labels)


def fmask(index: int) -> np.ndarray:
    """(512, 512) int16 Fmask values cycling through 0, 1, 2, 3, 4 and 255 by column band."""
    values = np.array([0, 1, 2, 3, 4, 255], dtype=np.int16)
    return _pad(values[(COLS // 86 + index) % 6])


def qa60(index: int, dtype: str = "int16") -> np.ndarray:
    """(512, 512) QA60 flags cycling through 0, 1024, 2048 and 3072 by 128-row band."""
    flags = np.array([0, 1024, 2048, 3072], dtype=dtype)
    return _pad(flags[(ROWS // 128 + index) % 4])


def s1_vv(index: int) -> np.ndarray:
    """(512, 512) float32 backscatter in dB."""
    return _pad((-20.0 + ROWS / 64.0 + index).astype(np.float32))


def elevation(index: int) -> np.ndarray:
    """(512, 512) int16 elevation in metres."""
    return _pad((100 * index + COLS).astype(np.int16))


#: the header of the release's metadata.csv (CloudSEN12-high / -nolabel on the hub)
METADATA_HEADER = (
    "index,annotator_name,roi_id,s2_id_gee,s2_id,s2_date,s2_sen2cor_version,s2_fmask_version,"
    "s2_cloudless_version,s2_reflectance_conversion_correction,s2_aot_retrieval_accuracy,"
    "s2_water_vapour_retrieval_accuracy,s2_view_off_nadir,s2_view_sun_azimuth,"
    "s2_view_sun_elevation,s1_id,s1_date,s1_grd_post_processing_software_name,"
    "s1_grd_post_processing_software_version,s1_slc_processing_facility_name,"
    "s1_slc_processing_software_version,s1_radar_coverage,land_cover,label_type,"
    "cloud_coverage,test,difficulty,proj_epsg,proj_geometry,proj_shape,proj_centroid,"
    "proj_transform,test_sr"
)
METADATA_COLUMNS = METADATA_HEADER.split(",")
#: roi_id, land_cover and cloud_coverage of the test patches (two patches share a ROI)
TEST_METADATA = (
    ("ROI_0530", 10, "cloud-free"),
    ("ROI_0533", 40, "mid-cloudy"),
    ("ROI_0530", 10, "cloudy"),
)


def metadata_row(index: int) -> dict[str, object]:
    """One row of test/metadata.csv, in the published columns (empty cells where unknown)."""
    roi, land_cover, coverage = TEST_METADATA[index % len(TEST_METADATA)]
    row: dict[str, object] = dict.fromkeys(METADATA_COLUMNS, "")
    row.update(
        index=20000 + index,
        annotator_name="CESAR",
        roi_id=roi,
        s2_id=f"S2A_MSIL1C_2019041{index}T191919_N0207_R099_T10VFJ_20190414T211515",
        s2_date=f"2019-04-1{index}T19:28:43Z",
        s2_view_sun_azimuth=168.95 + index,
        land_cover=land_cover,
        label_type="high",
        cloud_coverage=coverage,
        test=1,
        proj_epsg=32610,
        proj_shape=509,
        proj_transform="10, 0, 663300, 0, -10, 6375870",
    )
    return row


def write_metadata(path: Path, n: int) -> None:
    """The release's metadata.csv for ``n`` patches."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=METADATA_COLUMNS)
        writer.writeheader()
        for index in range(n):
            writer.writerow(metadata_row(index))


def _pad(array: np.ndarray) -> np.ndarray:
    out = np.zeros_like(array)
    out[INTERIOR, INTERIOR] = array[INTERIOR, INTERIOR]
    return out


def write_layer(path: Path, patches: list[np.ndarray]) -> None:
    """One layer file: the (N, 512, 512) stack as raw C-order bytes."""
    np.stack(patches).tofile(path)


def _write_split(folder: Path, split: str, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ids = range(n)
    if split == "test":
        for band in L1C:
            write_layer(
                folder / f"L1C_{SHORT_SPELLING.get(band, band)}.dat",
                [band_dn(split, i, band) for i in ids],
            )
        write_layer(folder / "L2A_AOT.dat", [np.full((SIZE, SIZE), 120 + i, np.int16) for i in ids])
        write_layer(folder / "S1_VV.dat", [s1_vv(i) for i in ids])
        write_layer(folder / "EXTRA_elevation.dat", [elevation(i) for i in ids])
        write_layer(folder / "LABEL_manual_hq.dat", [manual_hq(split, i) for i in ids])
        write_layer(folder / "manual_sc.dat", [manual_sc(i) for i in ids])
        write_layer(folder / "LABEL_fmask.dat", [fmask(i) for i in ids])
        write_layer(folder / "LABEL_QA60.dat", [qa60(i) for i in ids])
        write_metadata(folder / "metadata.csv", n)
    else:
        write_layer(folder / "manual_hq.dat", [manual_hq(split, i) for i in ids])
    if split == "val":
        for band in RGBN:
            write_layer(folder / f"L1C_{band}.dat", [band_dn(split, i, band) for i in ids])
    for band in RGBN:
        write_layer(folder / f"L2A_{band}.dat", [l2a_dn(split, i, band) for i in ids])


def write(root: Path, samples: dict[str, int] | None = None) -> Path:
    """Write the three split folders under ``root`` and return ``root``."""
    for split, n in (samples or SAMPLES).items():
        _write_split(Path(root) / split, split, n)
    return Path(root)
