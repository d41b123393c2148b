"""The CloudSEN12 TACO reader on miniature parts in the real v1 format (tests/data/cloudsen12-taco)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from s2clouds.datasets.cloudsen12_taco import (
    CloudSEN12Taco,
    check_part,
    cloudscore_mask,
    import_tacoreader,
)
from s2clouds.datasets.registry import detect_dataset, open_dataset
from s2clouds.errors import DatasetError
from s2clouds.labels import NODATA


@pytest.fixture
def make(maker):
    return maker("cloudsen12-taco")


@pytest.fixture
def root(make, tmp_path: Path) -> Path:
    pytest.importorskip("tacoreader")
    return make.write(tmp_path / "taco")


def test_detected_from_a_folder_and_from_one_part(root: Path) -> None:
    assert detect_dataset(root) == "cloudsen12-taco"
    part = root / "cloudsen12-l1c.0000.part.taco"
    assert detect_dataset(part) == "cloudsen12-taco"
    assert CloudSEN12Taco.detect(root / "cloudsen12-extra.0000.part.taco")
    assert not CloudSEN12Taco.detect(root.parent)


def test_defaults_read_the_high_quality_test_patches_of_every_l1c_part(make, root: Path) -> None:
    dataset = open_dataset(root)
    expected = [r["id"] for r in make.ROWS if r["split"] == "test" and r["label_type"] == "high"]
    assert [dataset[i]["meta"]["id"] for i in range(len(dataset))] == expected
    assert len(dataset.parts.images["L1C"]) >= 2  # several parts are one table


def test_sample_values_follow_the_card(make, root: Path) -> None:
    dataset = open_dataset(root, split=None, label=None)
    for i in range(len(dataset)):
        sample = dataset[i]
        index = [r["id"] for r in make.ROWS].index(sample["meta"]["id"])
        np.testing.assert_allclose(
            sample["image"], make.image_dn(index, "L1C").astype(np.float32) * np.float32(1e-4)
        )
        assert sample["bands"] == make.L1C
        np.testing.assert_array_equal(sample["mask"], make.target(index))
        rows, cols = make.real_window(int(make.ROWS[index]["real"]))
        inside = np.zeros(sample["mask"].shape, dtype=bool)
        inside[rows, cols] = True
        labelled = inside & (make.target(index) != make.NODATA)
        np.testing.assert_array_equal(sample["valid"], labelled)
        assert (sample["mask_canonical"][~labelled] == NODATA).all()
        np.testing.assert_array_equal(
            sample["mask_canonical"][labelled], make.target(index)[labelled]
        )
        assert str(sample["crs"]) == make.CRS
        assert sample["transform"].to_gdal() == make.transform(index)


def test_meta_carries_the_metadata_columns(make, root: Path) -> None:
    meta = open_dataset(root)[0]["meta"]
    row = make.ROWS[0]
    assert meta["id"] == row["id"] and meta["roi_id"] == row["roi_id"]
    assert meta["split"] == "test" and meta["label_type"] == "high"
    assert meta["real_proj_shape"] == row["real"] and meta["level"] == "L1C"
    assert meta["clear_percentage"] == make.percentages(0)["clear_percentage"]
    assert meta["part"].startswith("cloudsen12-l1c.")
    assert "internal:subfile" not in meta and "tortilla:offset" not in meta


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        ({"split": "train", "label": "scribble"}, ["ROI_0003__20191013"]),
        ({"split": ["val", "test"], "label": None}, None),
        ({"split": None, "label": None, "roi": "ROI_0001"}, None),
        ({"split": None, "label": "high", "size": 29}, ["ROI_0002__20200727"]),
        ({"split": "validation", "label": "nolabel"}, ["ROI_0001__20200220"]),
    ],
)
def test_metadata_filters(make, root: Path, options, ids) -> None:
    dataset = open_dataset(root, **options)
    got = sorted(dataset[i]["meta"]["id"] for i in range(len(dataset)))
    if ids is None:
        rows = make.ROWS
        if "roi" in options:
            rows = [r for r in rows if r["roi_id"] == options["roi"]]
        else:
            rows = [r for r in rows if r["split"] in ("validation", "test")]
        ids = [r["id"] for r in rows]
    assert got == sorted(ids)


def test_nolabel_patches_have_no_valid_pixel(root: Path) -> None:
    sample = open_dataset(root, split="val", label="nolabel")[0]
    assert not sample["valid"].any() and (sample["mask_canonical"] == NODATA).all()


def test_crop_returns_the_real_window_and_its_transform(make, root: Path) -> None:
    sample = open_dataset(root, size=29, crop=True)[0]
    index = 1
    rows, cols = make.real_window(29)
    assert sample["image"].shape == (13, 29, 29)
    np.testing.assert_array_equal(sample["mask"], make.target(index)[rows, cols])
    assert sample["valid"].all()
    x0, _, _, y0, _, _ = make.transform(index)
    assert sample["transform"].c == x0 + 10 * cols.start and sample["transform"].f == y0


def test_l2a_level_and_band_choice(make, root: Path) -> None:
    sample = open_dataset(root, level="L2A", bands=["B4", "nir"])[0]
    assert sample["bands"] == ("B04", "B08") and sample["meta"]["level"] == "L2A"
    dn = make.image_dn(0, "L2A")
    expected = dn[[make.L2A.index("B04"), make.L2A.index("B08")]].astype(np.float32) * 1e-4
    np.testing.assert_allclose(sample["image"], expected.astype(np.float32))


def test_extra_layers_are_matched_by_patch_id(make, root: Path) -> None:
    names = ["unetmobv2_v2", "cloudmask_sensei_v2", "lc10", "cloudscore_cs_v1", "cloudscore_cs"]
    dataset = open_dataset(root, split=None, label=None, layers=names)
    for i in range(len(dataset)):
        sample = dataset[i]
        index = [r["id"] for r in make.ROWS].index(sample["meta"]["id"])
        layers = sample["layers"]
        np.testing.assert_array_equal(
            layers["unetmobv2_v2"], make.extra_layer(index, "cloudmask_unetmobv2_v2")
        )
        np.testing.assert_array_equal(
            layers["sensei_v2"], make.extra_layer(index, "cloudmask_sensei_v2")
        )
        np.testing.assert_array_equal(layers["lc10"], make.extra_layer(index, "lc10"))
        score = make.extra_layer(index, "cloudmask_cloudscore_cs_v1")
        np.testing.assert_array_equal(layers["cloudscore_cs_v1"], score)
        np.testing.assert_array_equal(
            layers["cloudscore_cs_v1_cloud"], (score < 0.6).astype(np.uint8)
        )


def test_cloudscore_mask_thresholds_and_missing_values() -> None:
    score = np.array([[0.9, 0.59, np.nan], [0.6, 0.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(cloudscore_mask(score), [[0, 1, NODATA], [0, 1, 0]])
    np.testing.assert_array_equal(cloudscore_mask(np.array([[59, 60]], dtype=np.uint8)), [[1, 0]])


def test_stored_masks_and_their_schemes() -> None:
    assert CloudSEN12Taco.stored_layer("layer:unetmobv2_v2") == ("unetmobv2_v2", "cloudsen12")
    assert CloudSEN12Taco.stored_layer("cloudmask_sen2cor") == ("sen2cor", "sen2cor")
    assert CloudSEN12Taco.stored_layer("cloudscore_cs") == ("cloudscore_cs_v1_cloud", "s2cloudless")
    with pytest.raises(DatasetError, match="unknown stored mask"):
        CloudSEN12Taco.stored_layer("lc10")


def test_benchmark_scores_stored_masks_beside_a_model(root: Path) -> None:
    from s2clouds.benchmark.runner import run_benchmark

    maskers = ["layer:unetmobv2_v2", "layer:unetmobv2_v1", "layer:sensei_v2", "layer:cloudscore_cs"]
    options = CloudSEN12Taco.benchmark_options(["test"], [m[6:] for m in maskers])
    dataset = open_dataset(root, **options)
    scorer = run_benchmark(dataset, [*maskers, "physical"], progress=False)
    rows = {(r["masker"], r["task"]): r for r in scorer.summary_rows()}
    assert rows[("layer:unetmobv2_v1", "cloud")]["published_median_boa"] == pytest.approx(0.920)
    assert ("layer:unetmobv2_v2", "shadow") in rows and ("physical", "cloud") in rows
    assert ("layer:cloudscore_cs", "shadow") not in rows  # a cloud/clear mask


def test_truncated_part_is_refused_by_name(root: Path) -> None:
    part = root / "cloudsen12-l1c.0001.part.taco"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cloudsen12-l1c\.0001\.part\.taco is truncated"):
        open_dataset(root)
    part.write_bytes(b"PK" + data[2:])
    with pytest.raises(DatasetError, match="not a TACO v1 file"):
        check_part(part)


def test_an_extra_part_alone_and_missing_extra_parts(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="holds no images"):
        CloudSEN12Taco(root / "cloudsen12-extra.0000.part.taco")
    lone = tmp_path / "lone"
    lone.mkdir()
    for part in root.glob("cloudsen12-l1c.*"):
        shutil.copy(part, lone / part.name)
    assert len(CloudSEN12Taco(lone)) == 2
    with pytest.raises(DatasetError, match="cloudsen12-extra"):
        CloudSEN12Taco(lone, layers=["unetmobv2_v2"])
    with pytest.raises(DatasetError, match="no cloudsen12-l2a parts"):
        CloudSEN12Taco(lone, level="L2A")


def test_filters_that_match_nothing_and_bad_values(root: Path) -> None:
    with pytest.raises(DatasetError, match="no patch"):
        CloudSEN12Taco(root, roi="ROI_9999")
    with pytest.raises(DatasetError, match="unknown label type"):
        CloudSEN12Taco(root, label="hq")
    with pytest.raises(DatasetError, match="unknown split"):
        CloudSEN12Taco(root, split="dev")


def test_missing_tacoreader_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tacoreader", None)  # an import of it now fails
    with pytest.raises(DatasetError, match=r'pip install "s2clouds\[cloudsen12-taco\]"'):
        import_tacoreader()


# -- command line ------------------------------------------------------------------------------
def test_cli_info_on_one_part_and_benchmark_on_the_folder(root: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from s2clouds.cli.main import cli

    part = root / "cloudsen12-l1c.0000.part.taco"
    info = CliRunner().invoke(cli, ["datasets", "info", str(part), "-O", "label=high"])
    assert info.exit_code == 0, info.output
    assert "cloudsen12-taco" in info.output and "does not look like" not in info.output
    report = tmp_path / "report"
    bench = CliRunner().invoke(
        cli,
        [
            "benchmark",
            str(root),
            "--models",
            "layer:unetmobv2_v2,layer:sensei_v2,layer:unetmobv2_v1",
            "--split",
            "test",
            "-O",
            "size=13",
            "--report",
            str(report),
            "--quiet",
        ],
    )
    assert bench.exit_code == 0, bench.output
    summary = (report / "summary.csv").read_text()
    assert "layer:sensei_v2" in summary and "0.92" in summary  # the paper's UnetMobV2 (V1)


def test_cli_truncated_part_is_one_line_and_exit_2(root: Path, capsys) -> None:
    from s2clouds.cli.main import main

    part = root / "cloudsen12-l1c.0000.part.taco"
    part.write_bytes(part.read_bytes()[:300])
    with pytest.raises(SystemExit) as stop:
        main(["datasets", "info", str(root)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "cloudsen12-l1c.0000.part.taco is truncated" in err and "Traceback" not in err
