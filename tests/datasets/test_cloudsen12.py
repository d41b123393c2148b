"""CloudSEN12 memmap reader, seeded split recomposition and the dataset registry."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from s2clouds.datasets.cloudsen12 import LAYERS, CloudSEN12, parse_layer_filename
from s2clouds.datasets.registry import detect_dataset, open_dataset
from s2clouds.datasets.splits import recompose
from s2clouds.errors import BandError, DatasetError, UnknownNameError

SCALE = np.float32(0.0001)


@pytest.fixture
def make(maker):
    return maker("cloudsen12")


@pytest.fixture
def root(make, tmp_path: Path) -> Path:
    return make.write(tmp_path / "cloudsen12")


def interior(make) -> np.ndarray:
    inside = np.zeros((make.SIZE, make.SIZE), dtype=bool)
    inside[make.INTERIOR, make.INTERIOR] = True
    return inside


# -- layer table and file names ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("filename", "key"),
    [
        ("L1C_B04.dat", "L1C_B04"),
        ("L1C_B4.dat", "L1C_B04"),
        ("L2A_B8A.dat", "L2A_B8A"),
        ("L2A_TCI_R.dat", "L2A_TCI_R"),
        ("LABEL_manual_hq.dat", "LABEL_manual_hq"),
        ("manual_hq.dat", "LABEL_manual_hq"),
        ("kappamask_L1C.dat", "LABEL_kappamask_L1C"),
        ("S1_angle.dat", "S1_angle"),
        ("EXTRA_Shwdirection.dat", "EXTRA_Shwdirection"),
    ],
)
def test_file_names_in_every_spelling_map_to_one_layer(filename: str, key: str) -> None:
    spec = parse_layer_filename(filename)
    assert spec is not None and spec.key == key


@pytest.mark.parametrize("filename", ["L2A_B10.dat", "B04.dat", "notes.dat", "L1C_B13.dat"])
def test_names_outside_the_card_are_not_layers(filename: str) -> None:
    assert parse_layer_filename(filename) is None


def test_layer_table_follows_the_card() -> None:
    assert LAYERS["L1C_B10"].dtype == "int16" and LAYERS["L1C_B10"].scale == 0.0001
    assert "L2A_B10" not in LAYERS
    assert LAYERS["L2A_AOT"].scale == 0.001 and LAYERS["EXTRA_Shwdirection"].scale == 0.01
    assert LAYERS["S1_VV"].dtype == "float32"
    assert LAYERS["LABEL_fmask"].dtype == "int16" and LAYERS["LABEL_manual_hq"].dtype == "int8"
    assert LAYERS["LABEL_kappamask_L2A"].scheme == "kappamask"


# -- reading -----------------------------------------------------------------------------------
def test_image_is_scaled_int16_of_every_band_in_catalogue_order(make, root: Path) -> None:
    ds = CloudSEN12(root, "test")
    assert len(ds) == 3
    assert ds.bands == make.L1C
    sample = ds[1]
    assert sample["image"].shape == (13, 512, 512) and sample["image"].dtype == np.float32
    for c, band in enumerate(make.L1C):
        np.testing.assert_array_equal(sample["image"][c], make.band_dn("test", 1, band) * SCALE)
    assert {
        "split": "test",
        "index": 1,
        "level": "L1C",
        "label": "LABEL_manual_hq",
    }.items() <= sample["meta"].items()  # and the metadata.csv columns (tested below)
    assert sample["crs"] is None and sample["transform"] is None


def test_bands_accept_any_spelling_and_keep_the_requested_order(make, root: Path) -> None:
    ds = CloudSEN12(root, "test", bands=["b8a", "B1", "red"])
    assert ds.bands == ("B8A", "B01", "B04")
    image = ds[0]["image"]
    np.testing.assert_array_equal(image[1], make.band_dn("test", 0, "B01") * SCALE)
    np.testing.assert_array_equal(image[2], make.band_dn("test", 0, "B04") * SCALE)
    with pytest.raises(BandError, match="B04"):
        CloudSEN12(root, "test", bands=["B4", "B04"])


def test_manual_labels_pad_and_canonical_mask(make, root: Path) -> None:
    sample = CloudSEN12(root, "test")[2]
    expected = make.manual_hq("test", 2)
    inside = interior(make)
    np.testing.assert_array_equal(sample["mask"], expected)
    assert sample["mask"].dtype == np.int8
    # the pad holds 0 (= clear) on disk but is no data for s2clouds
    np.testing.assert_array_equal(sample["valid"], inside)
    assert np.all(sample["mask_canonical"][~inside] == 255)
    np.testing.assert_array_equal(sample["mask_canonical"][inside], expected[inside])
    assert sample["valid"][1, 1] and sample["valid"][509, 509] and not sample["valid"][510, 509]


def test_crop_returns_the_509_pixel_interior(make, root: Path) -> None:
    sample = CloudSEN12(root, "test", crop=True)[0]
    assert sample["image"].shape == (13, 509, 509)
    assert sample["mask"].shape == sample["valid"].shape == (509, 509)
    assert sample["valid"].all()
    full = make.band_dn("test", 0, "B02")
    np.testing.assert_array_equal(sample["image"][1], full[1:510, 1:510] * SCALE)
    assert sample["image"][1, 0, 0] == full[1, 1] * SCALE


def test_scribbles_outside_0_to_3_are_unlabelled(make, root: Path) -> None:
    sample = CloudSEN12(root, "test", label="manual_sc")[1]
    raw = make.manual_sc(1)
    np.testing.assert_array_equal(sample["mask"], raw)
    labelled = (raw >= 0) & (raw <= 3) & interior(make)
    np.testing.assert_array_equal(sample["valid"], labelled)
    canonical = sample["mask_canonical"]
    assert canonical[101, 60] == 1 and canonical[201, 60] == 3 and canonical[11, 15] == 2
    assert canonical[405, 405] == 255  # stored 9
    assert canonical[50, 50] == 255  # stored -1


def test_algorithm_labels_go_through_their_scheme(make, root: Path) -> None:
    sample = CloudSEN12(root, "test", label="LABEL_fmask")[0]
    raw = make.fmask(0)
    assert sample["mask"].dtype == np.int16
    fmask_to_canonical = {0: 0, 1: 0, 2: 3, 3: 0, 4: 1, 255: 255}
    inside = interior(make)
    for value, canonical in fmask_to_canonical.items():
        where = (raw == value) & inside
        assert where.any()
        assert np.all(sample["mask_canonical"][where] == canonical)
    np.testing.assert_array_equal(sample["valid"], inside & (raw != 255))


def test_no_label_gives_mask_none_and_interior_valid(make, root: Path) -> None:
    sample = CloudSEN12(root, "test", label=None)[0]
    assert sample["mask"] is None and sample["mask_canonical"] is None
    np.testing.assert_array_equal(sample["valid"], interior(make))


def test_extra_layers_are_scaled_to_physical_values(make, root: Path) -> None:
    layers = CloudSEN12(root, "test", layers=["S1_VV", "elevation", "L2A_AOT"])[2]["layers"]
    np.testing.assert_array_equal(layers["S1_VV"], make.s1_vv(2))
    np.testing.assert_array_equal(layers["EXTRA_elevation"], make.elevation(2).astype(np.float32))
    np.testing.assert_allclose(layers["L2A_AOT"], 0.122, rtol=1e-6)


def test_partial_split_offers_what_is_there(make, root: Path) -> None:
    with pytest.raises(DatasetError, match="level='L2A'"):
        CloudSEN12(root, "train", level="L1C")
    ds = CloudSEN12(root, "train", level="L2A")
    assert ds.bands == make.RGBN and len(ds) == 2
    assert CloudSEN12(root, "train").level == "L2A"  # the only level there is used
    assert CloudSEN12(root, "test").level == "L1C"  # L1C when both are there
    assert ds.available_layers() == ("L2A_B02", "L2A_B03", "L2A_B04", "L2A_B08", "LABEL_manual_hq")
    np.testing.assert_array_equal(ds[1]["image"][2], make.l2a_dn("train", 1, "B04") * SCALE)
    # train/ names its label file without the LABEL_ prefix
    np.testing.assert_array_equal(ds[1]["mask"], make.manual_hq("train", 1))


def test_several_splits_are_concatenated_in_the_given_order(root: Path) -> None:
    ds = CloudSEN12(root, ["val", "train"], level="L2A")
    assert len(ds) == 3
    assert [s["meta"]["split"] for s in ds] == ["val", "train", "train"]
    assert ds.bands == ("B02", "B03", "B04", "B08")
    assert ds.summary()["splits"] == {"val": 1, "train": 2}


def test_memmaps_are_opened_once_and_not_pickled(root: Path) -> None:
    ds = CloudSEN12(root, "test")
    ds[0]
    handle = ds._memmap("test", "L1C_B02")
    ds[2]
    assert ds._memmap("test", "L1C_B02") is handle
    assert len(pickle.dumps(ds)) < 1_000_000  # the 20 MB of open memmaps are not serialised
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[2]["image"], ds[2]["image"])


def test_negative_index_and_out_of_range(root: Path) -> None:
    ds = CloudSEN12(root, "test")
    assert ds[-1]["meta"]["index"] == 2
    with pytest.raises(IndexError):
        ds[3]


# -- bad input ---------------------------------------------------------------------------------
def test_missing_label_file_is_named(root: Path) -> None:
    with pytest.raises(DatasetError, match=r"train[/\\]LABEL_fmask\.dat"):
        CloudSEN12(root, "train", level="L2A", label="fmask")


def test_missing_band_file_is_named(root: Path) -> None:
    with pytest.raises(DatasetError, match=r"val[/\\]L1C_B05\.dat"):
        CloudSEN12(root, "val", bands=["B02", "B05"])


def test_missing_split_folder_and_unknown_split(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        CloudSEN12(tmp_path / "nowhere", "test")
    with pytest.raises(DatasetError, match="unknown split"):
        CloudSEN12(root, "validation")


def test_truncated_file_names_the_file_and_its_size(root: Path) -> None:
    path = root / "test" / "L1C_B03.dat"
    with path.open("ab") as handle:
        handle.write(b"\0" * 10)
    with pytest.raises(
        DatasetError, match=r"L1C_B03\.dat has 1572874 bytes, not a multiple of 524288"
    ):
        CloudSEN12(root, "test")


def test_layers_with_different_patch_counts_are_refused(root: Path) -> None:
    path = root / "val" / "L1C_B02.dat"
    with path.open("ab") as handle:
        handle.write(b"\0" * 512 * 512 * 2)
    with pytest.raises(DatasetError, match=r"L1C_B02\.dat: 1048576 bytes = 2 patches"):
        CloudSEN12(root, "val")


def test_two_spellings_of_one_layer_are_refused(root: Path) -> None:
    (root / "val" / "L1C_B4.dat").write_bytes((root / "val" / "L1C_B04.dat").read_bytes())
    with pytest.raises(DatasetError, match="both layer L1C_B04"):
        CloudSEN12(root, "val")


def test_a_damaged_layer_nobody_asked_for_is_left_out_with_a_warning(root: Path) -> None:
    with (root / "test" / "S1_VV.dat").open("ab") as handle:
        handle.write(b"\0" * 10)  # truncated download
    extra = root / "test" / "EXTRA_elevation.dat"
    extra.write_bytes(extra.read_bytes() * 2)  # 6 patches where the split has 3
    with pytest.warns(
        UserWarning, match=r"EXTRA_elevation\.dat .*S1_VV\.dat has 3145738 bytes"
    ) as caught:
        ds = CloudSEN12(root, "test")
    assert caught[0].filename == __file__  # points at the caller
    assert len(ds) == 3 and ds[0]["image"].shape == (13, 512, 512)
    assert "S1_VV" not in ds.available_layers()
    assert "EXTRA_elevation" not in ds.available_layers()
    assert "LABEL_fmask" in ds.available_layers()
    with pytest.raises(DatasetError, match=r"S1_VV\.dat has 3145738 bytes, not a multiple"):
        CloudSEN12(root, "test", layers="S1_VV")
    with pytest.raises(
        DatasetError, match=r"\(EXTRA_elevation\.dat: 3145728 bytes = 6 patches; the other 14 "
    ):
        CloudSEN12(root, "test", layers=["elevation"])


def test_qa60_stored_as_int16_is_read_as_int16(make, root: Path) -> None:
    ds = CloudSEN12(root, "test", label="QA60")
    assert ds.splits["test"].dtypes["LABEL_QA60"] == "int16"
    sample = ds[1]
    np.testing.assert_array_equal(sample["mask"], make.qa60(1))
    assert sample["mask"].dtype == np.int16
    inside = interior(make)
    raw = make.qa60(1)
    for value, canonical in {0: 0, 1024: 1, 2048: 2, 3072: 1}.items():
        where = (raw == value) & inside
        assert where.any() and np.all(sample["mask_canonical"][where] == canonical)
    # as an extra layer too (label layers stay raw)
    layer = CloudSEN12(root, "test", layers=["QA60"])[1]["layers"]["LABEL_QA60"]
    np.testing.assert_array_equal(layer, raw)


def test_qa60_stored_as_int8_follows_the_card_and_refuses_impossible_values(
    make, root: Path
) -> None:
    qa60 = root / "val" / "LABEL_QA60.dat"
    clear = np.zeros((1, make.SIZE, make.SIZE), dtype=np.int8)
    clear.tofile(qa60)  # 1 int8 patch, as the val split's other layers hold 1 patch
    ds = CloudSEN12(root, "val", label="QA60")
    assert ds.splits["val"].dtypes["LABEL_QA60"] == "int8"
    sample = ds[0]
    assert sample["mask"].dtype == np.int16
    np.testing.assert_array_equal(sample["valid"], interior(make))
    # the card's int8 stores the flags / 1024: 1 opaque, 2 cirrus, 3 both
    clear[0, 10:20, 10:20], clear[0, 20:30, 10:20], clear[0, 30:40, 10:20] = 1, 2, 3
    clear[0, 0, 0] = -1  # the pad as int8 stores 255
    clear.tofile(qa60)
    sample = CloudSEN12(root, "val", label="QA60")[0]
    assert sample["mask"][15, 15] == 1024 and sample["mask"][25, 15] == 2048
    assert sample["mask"][35, 15] == 3072 and sample["mask"][0, 0] == -1  # the pad stays
    assert sample["mask_canonical"][15, 15] == 1 and sample["mask_canonical"][25, 15] == 2
    assert sample["valid"][25, 15]
    clear[0, 100:110, 100:110] = 4  # what a wrapped-around 1024 could not be
    clear.tofile(qa60)
    with pytest.raises(DatasetError, match=r"stored as int8 .*cannot hold every QA60 class.*\[4\]"):
        CloudSEN12(root, "val", label="QA60")[0]


def test_qa60_size_decides_and_the_card_wins_when_ambiguous(make, root: Path, tmp_path) -> None:
    from s2clouds.datasets.cloudsen12 import scan_split

    # val holds 1 patch: 2 x 512 x 512 bytes can only be one int16 patch there
    make.write_layer(root / "val" / "LABEL_QA60.dat", [make.qa60(0)])
    assert CloudSEN12(root, "val", label="QA60").splits["val"].dtypes["LABEL_QA60"] == "int16"
    # alone in a folder the same size is 2 int8 patches (the card) or 1 int16 patch
    alone = tmp_path / "alone"
    alone.mkdir()
    make.write_layer(alone / "LABEL_QA60.dat", [make.qa60(0)])
    split = scan_split(alone)
    assert (split.n, split.dtypes["LABEL_QA60"]) == (2, "int8")
    # a QA60 file of neither size is refused when asked for
    make.write_layer(root / "val" / "LABEL_QA60.dat", [make.qa60(0, "int32")])
    with pytest.raises(
        DatasetError,
        match=r"LABEL_QA60\.dat has 1048576 bytes, not 262144 \(int8\) or 524288 \(int16\)",
    ):
        CloudSEN12(root, "val", label="QA60")


def test_bands_outside_the_level_are_refused_and_one_name_is_one_band(make, root: Path) -> None:
    with pytest.raises(DatasetError, match=r"B10: not L2A spectral band.*level='L1C'"):
        CloudSEN12(root, "test", level="L2A", bands=["B10"])
    with pytest.raises(DatasetError, match=r"AOT: not L2A spectral band.*layers="):
        CloudSEN12(root, "test", level="L2A", bands=["AOT"])
    with pytest.raises(BandError, match="unknown Sentinel-2 band 'B13'"):
        CloudSEN12(root, "test", bands=["B13"])
    ds = CloudSEN12(root, "test", bands="B04")
    assert ds.bands == ("B04",)
    np.testing.assert_array_equal(ds[0]["image"][0], make.band_dn("test", 0, "B04") * SCALE)


def test_unknown_label_and_non_label(root: Path) -> None:
    with pytest.raises(DatasetError, match="unknown CloudSEN12 layer"):
        CloudSEN12(root, "test", label="manual_xx")
    with pytest.raises(DatasetError, match="not a label layer"):
        CloudSEN12(root, "test", label="S1_VV")


# -- recomposed splits -------------------------------------------------------------------------
def test_recompose_is_seeded_disjoint_and_complete() -> None:
    sizes = {"train": 85, "val": 5, "test": 10}
    first = recompose(sizes, {"train": 0.7, "val": 0.2, "test": 0.1}, seed=3)
    assert first == recompose(
        dict(reversed(sizes.items())), {"train": 0.7, "val": 0.2, "test": 0.1}, seed=3
    )
    assert first != recompose(sizes, {"train": 0.7, "val": 0.2, "test": 0.1}, seed=4)
    assert [len(v) for v in first.values()] == [70, 20, 10]
    pooled = [ref for subset in first.values() for ref in subset]
    assert len(set(pooled)) == 100
    assert {s for s, _ in pooled} == {"train", "val", "test"}


def test_recompose_leaves_the_rest_out_and_rounds_to_all_samples() -> None:
    quarters = recompose({"test": 10}, {"a": 0.25, "b": 0.25}, seed=0)
    assert [len(v) for v in quarters.values()] == [2, 2]
    thirds = recompose({"test": 10}, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, seed=0)
    assert sorted(len(v) for v in thirds.values()) == [3, 3, 4]
    with pytest.raises(DatasetError, match="sum to"):
        recompose({"test": 10}, {"a": 0.8, "b": 0.3}, seed=0)
    with pytest.raises(DatasetError, match=r"\(0, 1\]"):
        recompose({"test": 10}, {"a": 0.0}, seed=0)


def test_from_index_reads_the_recomposed_samples(make, root: Path) -> None:
    sizes = CloudSEN12.split_sizes(root)
    assert sizes == {"train": 2, "val": 1, "test": 3}
    subsets = recompose(sizes, {"fit": 0.5, "check": 0.5}, seed=7)
    ds = CloudSEN12.from_index(root, subsets["fit"], level="L2A")
    assert len(ds) == 3 and ds.index() == subsets["fit"]
    for n, (split, i) in enumerate(subsets["fit"]):
        sample = ds[n]
        assert (sample["meta"]["split"], sample["meta"]["index"]) == (split, i)
        np.testing.assert_array_equal(sample["image"][0], make.l2a_dn(split, i, "B02") * SCALE)
    with pytest.raises(DatasetError, match="out of range"):
        CloudSEN12.from_index(root, [("test", 3)])
    with pytest.raises(DatasetError, match="leave split= out"):
        CloudSEN12.from_index(root, subsets["fit"], split="test")


# -- registry ------------------------------------------------------------------------------------
def test_registry_detects_and_opens(root: Path, tmp_path: Path) -> None:
    assert CloudSEN12.detect(root)
    assert detect_dataset(root) == "cloudsen12"
    ds = open_dataset(root, split="val", level="L2A")
    assert isinstance(ds, CloudSEN12) and len(ds) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not CloudSEN12.detect(empty)
    with pytest.raises(DatasetError, match="does not look like"):
        detect_dataset(empty)
    with pytest.raises(UnknownNameError, match="unknown dataset kind"):
        open_dataset(root, kind="landsat")
    with pytest.raises(DatasetError, match="its options are"):
        open_dataset(root, kind="cloudsen12", colour="red")


# -- metadata.csv ----------------------------------------------------------------------------
def test_metadata_csv_columns_go_into_meta(make, root: Path) -> None:
    dataset = CloudSEN12(root, split="test")
    for i in range(len(dataset)):
        meta = dataset[i]["meta"]
        row = make.metadata_row(i)
        assert meta["roi_id"] == row["roi_id"] and meta["land_cover"] == row["land_cover"]
        assert meta["cloud_coverage"] == row["cloud_coverage"]
        assert meta["s2_view_sun_azimuth"] == pytest.approx(row["s2_view_sun_azimuth"])
        assert meta["difficulty"] is None  # an empty cell
        assert meta["index"] == i and meta["metadata_index"] == row["index"]  # no clash
        assert meta["split"] == "test" and meta["label"] == "LABEL_manual_hq"
    assert dataset.metadata_row("test", 0)["proj_epsg"] == 32610


def test_splits_without_metadata_csv_keep_the_plain_meta(root: Path) -> None:
    meta = CloudSEN12(root, split="val", level="L2A")[0]["meta"]
    assert set(meta) == {"split", "index", "level", "label"}


def test_roi_filter_keeps_the_patches_of_those_rois(make, root: Path) -> None:
    dataset = CloudSEN12(root, split="test", roi="ROI_0530")
    expected = [i for i in range(3) if make.metadata_row(i)["roi_id"] == "ROI_0530"]
    assert dataset.index() == [("test", i) for i in expected]
    assert [dataset[k]["meta"]["roi_id"] for k in range(len(dataset))] == ["ROI_0530"] * 2
    assert len(CloudSEN12(root, split="test", roi=["ROI_0530", "ROI_0533"])) == 3
    with pytest.raises(DatasetError, match="no patch of the selected splits has roi_id"):
        CloudSEN12(root, split="test", roi="ROI_9999")
    with pytest.raises(DatasetError, match="metadata.csv"):
        CloudSEN12(root, split=["val", "test"], level="L1C", roi="ROI_0530")


def test_metadata_csv_of_another_length_is_refused(make, root: Path) -> None:
    make.write_metadata(root / "test" / "metadata.csv", 2)
    with pytest.raises(DatasetError, match="has 2 rows but the split holds 3 patches"):
        CloudSEN12(root, split="test")


def test_roi_option_from_the_command_line_reader_options(root: Path) -> None:
    dataset = open_dataset(root, kind="cloudsen12", split="test", roi="ROI_0533")
    assert len(dataset) == 1 and dataset[0]["meta"]["cloud_coverage"] == "mid-cloudy"
