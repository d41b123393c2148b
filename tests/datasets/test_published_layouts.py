"""Readers of the layouts as published: SEN12MS-CR and -CR-TS trees, the official SEN12MS
split lists, the On Cloud N competition folders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from s2clouds.datasets.oncloudn import OnCloudN
from s2clouds.datasets.registry import detect_dataset, open_dataset
from s2clouds.datasets.sen12ms import SEN12MS
from s2clouds.datasets.sen12mscr import SEN12MSCRPairs
from s2clouds.datasets.sen12mscr_release import SEN12MSCRRelease
from s2clouds.datasets.sen12mscrts_release import TEST_ROIS, SEN12MSCRTSRelease
from s2clouds.datasets.splits import read_official_split
from s2clouds.errors import DatasetError
from s2clouds.labels import NODATA
from s2clouds.labels.change import SHADOW, THICK, THIN

# ------------------------------------------------------------------------ SEN12MS-CR tree


def test_release_pairs_cloudy_with_clear_and_labels_them(tmp_path, maker) -> None:
    make = maker("sen12mscr-release")
    written = make.write(tmp_path)
    assert detect_dataset(tmp_path) == "sen12mscr-release"
    ds = open_dataset(tmp_path, with_s1=True)
    assert len(ds) == len(make.PATCHES) and ds.incomplete[0].patch == make.LONELY[2]
    for sample in ds:
        meta = sample["meta"]
        truth = written[(meta["roi"], meta["scene"], meta["patch"])]
        assert np.allclose(sample["image"], truth["cloudy"] / 10000.0)
        assert np.allclose(sample["reference"], truth["clear"] / 10000.0)
        np.testing.assert_array_equal(sample["s1"], truth["s1"])
        mask = sample["mask"]
        assert {THICK, THIN, SHADOW} <= set(np.unique(mask).tolist())
        labelled = mask != NODATA
        assert np.mean(mask[labelled] == truth["truth"][labelled]) > 0.99
    assert ds.summary()["incomplete_patches"] == 1


def test_release_official_scene_split_and_seasons(tmp_path, maker) -> None:
    make = maker("sen12mscr-release")
    make.write(tmp_path)
    test = SEN12MSCRRelease(tmp_path, split="test")
    assert [(s["meta"]["roi"], s["meta"]["scene"]) for s in test] == [make.HOLDOUT]
    val = SEN12MSCRRelease(tmp_path, split="val")
    assert [(s["meta"]["roi"], s["meta"]["scene"]) for s in val] == [make.VALIDATION]
    train = SEN12MSCRRelease(tmp_path, split="train")
    assert len(train) == len(make.PATCHES) - 2 and train.summary()["split_lists"]
    assert len(SEN12MSCRRelease(tmp_path, seasons="winter")) == 1
    with pytest.raises(DatasetError, match="split folder not found"):
        SEN12MSCRRelease(tmp_path, split="test", splits=tmp_path / "nope")
    with pytest.raises(DatasetError, match="unknown season"):
        SEN12MSCRRelease(tmp_path, seasons="monsoon")


def test_release_refuses_a_tree_without_clear_partners(tmp_path, maker) -> None:
    make = maker("sen12mscr-release")
    make.write(tmp_path)
    import shutil

    for roi in ("ROIs1158_spring", "ROIs2017_winter"):
        shutil.rmtree(tmp_path / f"{roi}_s2")
    assert not SEN12MSCRRelease.detect(tmp_path)
    with pytest.raises(DatasetError, match="no complete SEN12MS-CR patch"):
        SEN12MSCRRelease(tmp_path)


def test_release_labels_equal_the_repackaged_pairs_on_real_patches(real_data, tmp_path) -> None:
    """The real SEN12MS-CR pairs laid out as the release names them give the same samples."""
    pairs_root = real_data / "sen12mscr" / "pairs"
    names = sorted(p.name for p in pairs_root.iterdir())[:3]
    for name in names:
        roi, season, scene, patch = name.rsplit("_", 3)
        for sensor, file in (("s2_cloudy", "cloudy.tif"), ("s2", "clear.tif")):
            target = (
                tmp_path
                / f"{roi}_{season}_{sensor}"
                / f"{sensor}_{scene}"
                / f"{roi}_{season}_{sensor}_{scene}_{patch}.tif"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(pairs_root / name / file)
    release = SEN12MSCRRelease(tmp_path)
    pairs = SEN12MSCRPairs(pairs_root, only=names, keep_unusable=True)
    assert [s["meta"]["id"] for s in release] == [s["meta"]["id"] for s in pairs] == names
    for ours, theirs in zip(release, pairs, strict=True):
        np.testing.assert_array_equal(ours["image"], theirs["image"])
        np.testing.assert_array_equal(ours["mask"], theirs["mask"])


# ----------------------------------------------------------------- official SEN12MS split


def _split_folder(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "splits"
    folder.mkdir()
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


def test_official_scene_lists_and_patch_lists(tmp_path) -> None:
    scenes = _split_folder(
        tmp_path,
        SEN12MS_holdOutScenes__txt="ROIs1158_spring/s1_63\nROIs1970_fall/s1_120\n",
        ValidationScenes__txt="ROIs1158_spring/s2_112\n",
    )
    split = read_official_split(scenes)
    assert split.split_of("ROIs1158_spring", 63, 1) == "test"
    assert split.split_of("ROIs1158_spring", 112, 9) == "val"
    assert split.split_of("ROIs1158_spring", 1, 1) == "train"
    (scenes / "test_list.txt").write_text("ROIs1158_spring_s2_124_p100.tif\n")
    with open(scenes / "train_list.pkl", "wb") as f:
        pickle.dump(["ROIs1158_spring_s2_1_p30.tif"], f)
    listed = read_official_split(scenes)
    assert listed.split_of("ROIs1158_spring", 124, 100) == "test"
    assert listed.split_of("ROIs1158_spring", 1, 30) == "train"
    assert listed.split_of("ROIs1158_spring", 1, 31) == ""  # patch lists: not listed = none
    assert "train_list.pkl" in listed.source


def test_official_split_refuses_code_in_a_pickle_and_bad_lines(tmp_path) -> None:
    folder = _split_folder(tmp_path)
    with open(folder / "test_list.pkl", "wb") as f:
        pickle.dump([Path("x")], f)  # a class, not a name: would need code to rebuild
    with pytest.raises(DatasetError, match="not a pickled list of file names"):
        read_official_split(folder)
    (folder / "test_list.pkl").unlink()
    (folder / "SEN12MS_holdOutScenes.txt").write_text("somewhere/else\n")
    with pytest.raises(DatasetError, match="is not a SEN12MS scene"):
        read_official_split(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds none of"):
        read_official_split(empty)


def test_sen12ms_reader_takes_the_official_split(tmp_path, maker) -> None:
    maker("sen12ms").write(tmp_path)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "SEN12MS_holdOutScenes.txt").write_text("ROIs1868_summer/s1_7\n")
    test = SEN12MS(tmp_path, split="test", split_by="official")
    assert {(k.roi, k.scene) for k in test.keys} == {("ROIs1868_summer", 7)}
    train = SEN12MS(tmp_path, split="train", split_by="official")
    assert ("ROIs1868_summer", 7) not in {(k.roi, k.scene) for k in train.keys}
    assert len(train) + len(test) == len(SEN12MS(tmp_path))
    assert test.summary()["split_lists"] == ["SEN12MS_holdOutScenes.txt"]
    with pytest.raises(DatasetError, match="split 'val' is empty"):
        SEN12MS(tmp_path, split="val", split_by="official")


# ------------------------------------------------------------------ SEN12MS-CR-TS tree


def test_ts_release_labels_each_date_against_the_others(tmp_path, maker) -> None:
    make = maker("sen12mscr-ts-release")
    written = make.write(tmp_path)
    assert detect_dataset(tmp_path) == "sen12mscr-ts-release"
    ds = SEN12MSCRTSRelease(tmp_path)
    assert len(ds) == len(make.SERIES) * len(make.DATES) and ds.summary()["series"] == 2
    for sample in ds:
        meta = sample["meta"]
        assert meta["date"] == make.DATES[meta["time_index"]]
        if meta["time_index"] == make.CLOUDY:
            seed, roi = meta["roi"].split("/")
            truth = written[(seed, int(roi), meta["patch"])]["truth"]
            labelled = sample["mask"] != NODATA
            assert {THICK, THIN} <= set(np.unique(sample["mask"]).tolist())
            assert np.mean(sample["mask"][labelled] == truth[labelled]) > 0.95
        else:
            clear = sample["mask"][sample["mask"] != NODATA]
            assert np.mean(clear == 0) > 0.99


def test_ts_release_official_test_rois(tmp_path, maker) -> None:
    make = maker("sen12mscr-ts-release")
    make.write(tmp_path)
    test = SEN12MSCRTSRelease(tmp_path, split="test")
    seed, roi, _ = make.TEST_SERIES
    assert f"{seed}/{roi}" in TEST_ROIS
    assert {s["meta"]["roi"] for s in test} == {f"{seed}/{roi}"}
    assert {s["meta"]["split"] for s in SEN12MSCRTSRelease(tmp_path, split="train")} == {"train"}
    with pytest.raises(DatasetError, match="defines train, test"):
        SEN12MSCRTSRelease(tmp_path, split="val")
    assert len(SEN12MSCRTSRelease(tmp_path / seed)) == len(make.DATES)  # one seed folder


# ------------------------------------------------------------------------- On Cloud N


def test_oncloudn_reads_features_labels_and_metadata(tmp_path, maker) -> None:
    make = maker("oncloudn")
    written = make.write(tmp_path)
    assert detect_dataset(tmp_path) == "oncloudn"
    ds = OnCloudN(tmp_path)
    assert [c.name for c in ds.chips] == sorted(make.CHIPS) and ds.unlabelled == [make.UNLABELLED]
    sample = ds[0]
    chip = sample["meta"]["id"]
    assert sample["bands"] == ("B02", "B03", "B04", "B08")
    np.testing.assert_array_equal(sample["mask"], written[chip]["label"])
    dn = written[chip]["B02"].astype(np.float32)
    expected = np.where(dn == 0, np.nan, dn / 10000.0)
    np.testing.assert_allclose(sample["image"][0], expected, equal_nan=True)
    assert sample["meta"]["location"] == make.CHIPS[chip]
    assert sample["meta"]["datetime"] == make.DATETIME
    assert ds.summary()["locations"] == {"Chifunfu": 2, "Australia - Central": 1}
    assert len(OnCloudN(tmp_path, locations="Chifunfu")) == 2


def test_oncloudn_without_metadata_and_bad_metadata(tmp_path, maker) -> None:
    maker("oncloudn").write(tmp_path)
    (tmp_path / "train_metadata.csv").write_text("id,where\nadwp,x\n")
    with pytest.raises(DatasetError, match="no chip_id column"):
        OnCloudN(tmp_path)
    (tmp_path / "train_metadata.csv").unlink()
    ds = OnCloudN(tmp_path)
    assert ds[0]["meta"]["location"] is None
    with pytest.raises(DatasetError, match="needs .*train_metadata.csv"):
        OnCloudN(tmp_path, locations="Chifunfu")
