"""ChipFolders on tiny chip folders in the On Cloud N layout (GeoTIFF bands + label.tif)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2clouds.datasets.chips import ChipFolders
from s2clouds.datasets.registry import detect_dataset, open_dataset
from s2clouds.errors import DatasetError, LabelSchemeError


@pytest.fixture
def chips(maker, tmp_path: Path) -> tuple[Path, dict[str, dict[str, np.ndarray]], Any]:
    make = maker("chips")
    return tmp_path / "chips", make.write(tmp_path / "chips"), make


def test_one_sample_per_labelled_folder_with_reflectance(chips) -> None:
    root, written, make = chips
    ds = ChipFolders(root)
    assert len(ds) == 3  # notes/ has no label.tif
    for i, chip in enumerate(make.CHIPS):
        sample = ds[i]
        assert sample["meta"]["id"] == chip
        assert sample["bands"] == make.BANDS
        assert sample["image"].shape == (4, make.SIZE, make.SIZE)
        assert sample["image"].dtype == np.float32
        dn = np.stack([written[chip][b] for b in make.BANDS]).astype(np.float32)
        expected = np.where(dn == 0, np.nan, dn / np.float32(10000))
        np.testing.assert_allclose(sample["image"], expected, rtol=1e-6)
        np.testing.assert_array_equal(sample["mask"], written[chip]["label"])
        assert sample["mask"].dtype == np.uint8
    sample = ds[0]
    assert sample["crs"].to_epsg() == 32736 and sample["transform"].a == 10.0
    assert sample["meta"]["resolution"] == 10.0
    assert 0 < sample["meta"]["sun_zenith"] < 90  # from TIFFTAG_DATETIME and the chip centre
    with pytest.raises(IndexError):
        ds[3]


def test_valid_excludes_no_data_labels_and_no_data_pixels(chips) -> None:
    root, written, make = chips
    sample = ChipFolders(root)[0]
    labels = written[make.CHIPS[0]]["label"]
    expected = labels != 255
    expected[make.NODATA_PIXEL] = False  # DN 0 in the bands
    np.testing.assert_array_equal(sample["valid"], expected)
    assert sample["valid"].dtype == np.bool_


def test_binary_labels_become_canonical(chips) -> None:
    root, written, make = chips
    sample = ChipFolders(root)[1]
    labels = written[make.CHIPS[1]]["label"]
    canonical = sample["mask_canonical"]
    assert canonical.dtype == np.uint8
    np.testing.assert_array_equal(canonical, np.select([labels == 1, labels == 255], [1, 255], 0))
    assert "mask_canonical" not in ChipFolders(root, canonical=False)[1]


def test_values_outside_the_scheme_are_no_data(chips) -> None:
    root, written, make = chips
    folder = root / make.CHIPS[2]
    labels = written[make.CHIPS[2]]["label"].copy()
    labels[0, :4] = 7  # not a binary class
    make.write_tif(folder / "label.tif", labels, 255, {})
    sample = ChipFolders(root)[2]
    assert (sample["mask_canonical"][0, :4] == 255).all() and not sample["valid"][0, :4].any()
    with pytest.raises(LabelSchemeError):
        ChipFolders(root, scheme="no-such-scheme")


def test_missing_labels_and_damaged_files_are_dataset_errors(chips, tmp_path: Path) -> None:
    root, _, make = chips
    with pytest.raises(DatasetError, match="not found"):
        ChipFolders(tmp_path / "nowhere")
    for chip in make.CHIPS:
        (root / chip / "label.tif").unlink()
    with pytest.raises(DatasetError, match=r"no chip folder with a label\.tif \(4 folders"):
        ChipFolders(root)
    assert not ChipFolders.detect(root)
    (root / make.CHIPS[0] / "label.tif").write_bytes(b"not a tiff")
    with pytest.raises(DatasetError, match=r"label\.tif: cannot read the label raster"):
        ChipFolders(root)[0]


def test_label_on_another_grid_is_refused(chips) -> None:
    root, _, make = chips
    small = np.zeros((make.SIZE // 2, make.SIZE // 2), dtype=np.uint8)
    make.write_tif(root / make.CHIPS[1] / "label.tif", small, 255, {})
    with pytest.raises(DatasetError, match=r"is \(8, 8\), the bands are \(16, 16\)"):
        ChipFolders(root)[1]


def test_registry_detects_chip_folders(chips) -> None:
    root, _, _ = chips
    assert ChipFolders.detect(root)
    assert detect_dataset(root) == "chips"
    ds = open_dataset(root, label="label.tif")
    assert isinstance(ds, ChipFolders) and len(ds) == 3
    with pytest.raises(DatasetError, match="its options are"):
        open_dataset(root, split="test")
