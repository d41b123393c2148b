"""SEN12MS reader on a tiny tree of GeoTIFFs in the real layout, and the land-cover tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2clouds.datasets.registry import detect_dataset, open_dataset
from s2clouds.datasets.sen12ms import SEN12MS, PatchKey, assign_splits
from s2clouds.errors import BandError, DatasetError, LabelSchemeError
from s2clouds.labels.landcover import (
    LANDCOVER_LAYERS,
    LCCS_LAND_USE_EVALUATION_MERGE,
    get_landcover_layer,
)

Written = dict[tuple[str, int, int], dict[str, np.ndarray]]


@pytest.fixture
def tree(maker, tmp_path) -> tuple[Path, Written, Any]:
    make = maker("sen12ms")
    return tmp_path / "sen12ms", make.write(tmp_path / "sen12ms"), make


def _arrays(written: Written, key: PatchKey) -> dict[str, np.ndarray]:
    return written[(key.roi, key.scene, key.patch)]


def test_reads_triplets_with_values_and_georeference(tree) -> None:
    root, written, make = tree
    ds = SEN12MS(root)
    assert len(ds) == len(written) == 6
    for i, key in enumerate(ds.keys):
        sample, arrays = ds[i], _arrays(written, key)
        assert (
            sample["image"].shape == (13, make.SIZE, make.SIZE)
            and sample["image"].dtype == np.float32
        )
        np.testing.assert_allclose(sample["image"], arrays["s2"] / 10000.0, rtol=1e-6)
        np.testing.assert_array_equal(sample["s1"], arrays["s1"])
        np.testing.assert_array_equal(sample["mask"], arrays["lc"][0])  # IGBP is band 1
        np.testing.assert_array_equal(sample["valid"], arrays["lc"][0] != 255)
        assert sample["bands"][8] == "B8A"
    sample = ds[0]
    assert sample["crs"].to_epsg() == 32633 and sample["transform"].a == 10.0
    meta = sample["meta"]
    assert (meta["roi"], meta["scene"], meta["patch"], meta["season"]) == (
        "ROIs1158_spring",
        1,
        30,
        "spring",
    )
    assert set(meta["paths"]) == {"s1", "s2", "lc"}
    assert meta["paths"]["s2"].endswith("ROIs1158_spring/s2_1/ROIs1158_spring_s2_1_p30.tif")


def test_seasons_csv_gives_the_climatic_season(tree) -> None:
    root, _, _ = tree
    ds = SEN12MS(root)
    by_scene = {
        (ds[i]["meta"]["roi"], ds[i]["meta"]["scene"]): ds[i]["meta"]["climatic_season"]
        for i in range(len(ds))
    }
    assert by_scene[("ROIs1158_spring", 2)] == "fall"
    assert by_scene[("ROIs1868_summer", 7)] == "winter"
    (root / "seasons.csv").unlink()
    assert SEN12MS(root)[0]["meta"]["climatic_season"] is None
    (root / "seasons.csv").write_text("a;b\n1;2\n")
    with pytest.raises(DatasetError, match="columns roi, scene, season"):
        SEN12MS(root)


def test_band_selection_layer_and_canonical(tree) -> None:
    root, written, _ = tree
    ds = SEN12MS(root, bands=["red", "B8A", "b2"], layer="lccs_lu", canonical=True, with_s1=False)
    sample = ds[0]
    arrays = _arrays(written, ds.keys[0])
    assert sample["bands"] == ("B04", "B8A", "B02")
    np.testing.assert_allclose(sample["image"], arrays["s2"][[3, 8, 1]] / 10000.0, rtol=1e-6)
    np.testing.assert_array_equal(sample["mask"], arrays["lc"][2])
    assert sample["s1"] is None and sample["meta"]["layer"] == "lccs_lu"
    np.testing.assert_array_equal(sample["mask_canonical"], np.where(sample["valid"], 0, 255))
    with pytest.raises(BandError):
        SEN12MS(root, bands=["B99"])
    with pytest.raises(LabelSchemeError, match="land-cover layer"):
        SEN12MS(root, layer="corine")


def test_missing_partner_is_reported_or_skipped(tree) -> None:
    root, _, make = tree
    make.patch_path(root, "ROIs1868_summer", "s1", 7, 101).unlink()
    with pytest.raises(DatasetError, match=r"ROIs1868_summer_s1_7_p101\.tif .*missing='skip'"):
        SEN12MS(root)
    ds = SEN12MS(root, missing="skip")
    assert len(ds) == 5
    assert ds.skipped == [(PatchKey(1868, "summer", 7, 101), ("s1",))]
    assert len(SEN12MS(root, with_s1=False)) == 6  # S1 not needed then


def test_wrong_band_count_names_the_file(tree) -> None:
    root, written, make = tree
    arrays = written[("ROIs2017_winter", 4, 12)]
    path = make.patch_path(root, "ROIs2017_winter", "s2", 4, 12)
    make._write_tif(path, arrays["s2"][:12], (0.0, 0.0))
    ds = SEN12MS(root)
    index = ds.keys.index(PatchKey(2017, "winter", 4, 12))
    with pytest.raises(
        DatasetError,
        match=r"ROIs2017_winter_s2_4_p12\.tif: 12 bands, but SEN12MS s2 patches have 13",
    ):
        ds[index]


def test_damaged_geotiff_is_a_dataset_error(tree) -> None:
    root, _, make = tree
    make.patch_path(root, "ROIs1158_spring", "lc", 2, 5).write_bytes(b"not a tiff")
    ds = SEN12MS(root)
    index = ds.keys.index(PatchKey(1158, "spring", 2, 5))
    with pytest.raises(DatasetError, match=r"ROIs1158_spring_lc_2_p5\.tif: cannot read"):
        ds[index]


def test_splits_are_seeded_disjoint_and_keep_groups_together(tree) -> None:
    root, _, _ = tree
    fractions = (0.5, 0.25, 0.25)
    parts = {
        s: SEN12MS(root, split=s, fractions=fractions, seed=3).keys
        for s in ("train", "val", "test")
    }
    assert sorted(k for keys in parts.values() for k in keys) == SEN12MS(root).keys
    scenes = {s: {(k.roi, k.scene) for k in keys} for s, keys in parts.items()}
    assert not (
        scenes["train"] & scenes["val"]
        or scenes["train"] & scenes["test"]
        or scenes["val"] & scenes["test"]
    )
    assert SEN12MS(root, split="train", fractions=fractions, seed=3).keys == parts["train"]
    by_season = SEN12MS(
        root, split="train", split_by="season", fractions=(0.34, 0.33, 0.33), seed=1
    )
    assert len({k.season for k in by_season.keys}) == 1
    with pytest.raises(DatasetError, match="sum to 1"):
        SEN12MS(root, split="train", fractions=(0.5, 0.5, 0.5))
    with pytest.raises(DatasetError, match="split 'val' is empty"):
        SEN12MS(root, split="val", fractions=(1.0, 0.0, 0.0))


def test_assign_splits_counts_and_determinism() -> None:
    groups = [f"g{i}" for i in range(10)]
    first = assign_splits(groups, (0.6, 0.2, 0.2), seed=7)
    assert first == assign_splits(list(reversed(groups)), (0.6, 0.2, 0.2), seed=7)
    assert sorted(first.values()).count("train") == 6 and list(first.values()).count("test") == 2
    assert first != assign_splits(groups, (0.6, 0.2, 0.2), seed=8)


def test_season_filter_detect_and_file_list(tree) -> None:
    root, _, make = tree
    assert {k.season for k in SEN12MS(root, seasons=["summer", "winter"]).keys} == {
        "summer",
        "winter",
    }
    with pytest.raises(DatasetError, match="unknown season"):
        SEN12MS(root, seasons=["monsoon"])
    assert SEN12MS(root, seasons="winter").keys == [PatchKey(2017, "winter", 4, 12)]
    assert SEN12MS.detect(root) and SEN12MS.detect(root / "ROIs1158_spring")
    assert not SEN12MS.detect(root / "ROIs1158_spring" / "s2_1")
    s2 = make.patch_path(root, "ROIs1868_summer", "s2", 7, 100)
    ds = SEN12MS([s2])
    assert len(ds) == 1 and ds[0]["meta"]["patch"] == 100
    assert ds[0]["meta"]["paths"]["s2"] == str(s2)
    with pytest.raises(DatasetError, match="not a SEN12MS s2 patch name"):
        SEN12MS([make.patch_path(root, "ROIs1868_summer", "lc", 7, 100)])


def test_one_roi_folder_is_a_dataset_root(tree) -> None:
    root, written, _ = tree
    roi = root / "ROIs1158_spring"
    assert SEN12MS.detect(roi) and detect_dataset(roi) == "sen12ms"
    ds = open_dataset(roi)
    assert isinstance(ds, SEN12MS) and len(ds) == 3
    assert {k.roi for k in ds.keys} == {"ROIs1158_spring"}
    np.testing.assert_allclose(
        ds[0]["image"], _arrays(written, ds.keys[0])["s2"] / 10000.0, rtol=1e-6
    )
    # seasons.csv lies in the dataset folder above the ROI folder
    assert ds[2]["meta"]["climatic_season"] == "fall"


def test_listed_s2_files_are_read_where_they_are(tree, tmp_path) -> None:
    root, written, make = tree
    flat = tmp_path / "flat"
    flat.mkdir()
    for sensor in ("s1", "s2", "lc"):
        source = make.patch_path(root, "ROIs1158_spring", sensor, 2, 5)
        (flat / source.name).write_bytes(source.read_bytes())
    ds = SEN12MS([flat / "ROIs1158_spring_s2_2_p5.tif"], bands="B04")
    assert ds.bands == ("B04",) and len(ds) == 1
    sample = ds[0]
    assert set(sample["meta"]["paths"].values()) == {
        str(flat / f"ROIs1158_spring_{s}_2_p5.tif") for s in ("s1", "s2", "lc")
    }
    arrays = written[("ROIs1158_spring", 2, 5)]
    np.testing.assert_allclose(sample["image"][0], arrays["s2"][3] / 10000.0, rtol=1e-6)
    np.testing.assert_array_equal(sample["mask"], arrays["lc"][0])
    with pytest.raises(DatasetError, match="s2 patch not found"):
        SEN12MS([flat / "ROIs1158_spring_s2_2_p6.tif"])


def test_landcover_tables_follow_table_2_of_the_paper() -> None:
    sizes = {name: len(layer.classes) for name, layer in LANDCOVER_LAYERS.items()}
    assert sizes == {"igbp": 17, "lccs_lc": 16, "lccs_lu": 11, "lccs_sh": 10}
    assert [layer.band for layer in LANDCOVER_LAYERS.values()] == [1, 2, 3, 4]
    assert get_landcover_layer("IGBP").classes[13] == "Urban and Built-Up Lands"
    assert get_landcover_layer("lccs-land-use").classes[36] == "Herbaceous Croplands"
    assert get_landcover_layer("lccs_sh").classes[51] == "Tundra"
    assert all(layer.nodata == 255 for layer in LANDCOVER_LAYERS.values())
    assert set(LCCS_LAND_USE_EVALUATION_MERGE) <= set(get_landcover_layer("lccs_lu").classes)
