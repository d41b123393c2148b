import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2clouds.benchmark.runner import run_benchmark
from s2clouds.cli.main import cli
from s2clouds.datasets.chips import ChipFolders


def test_benchmark_real_chips_with_report(real_data: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = CliRunner().invoke(
        cli,
        ["benchmark", str(real_data), "--models", "physical", "--report", str(report), "--quiet"],
        standalone_mode=False,
        terminal_width=200,
    )
    assert result.exception is None, result.output
    rows = list(csv.DictReader((report / "summary.csv").open()))
    cloud = next(r for r in rows if r["masker"] == "physical" and r["task"] == "cloud")
    assert float(cloud["median_boa"]) > 0.78  # measured 0.818 (chips: 0.80 / 0.82 / 0.86)
    assert (report / "report.html").stat().st_size > 0 and (report / "report.md").exists()


def test_runner_scores_truth_as_perfect(real_data: Path) -> None:
    dataset = ChipFolders(real_data)
    scorer = run_benchmark(dataset, ["physical"], limit=1, progress=False)
    sample = dataset[0]
    scorer.update(
        "oracle", sample["mask_canonical"], sample["mask_canonical"], sample["valid"], {"id": "x"}
    )
    rows = {(r["masker"], r["task"]): r for r in scorer.summary_rows()}
    assert rows[("oracle", "cloud")]["median_boa"] == 1.0
    physical = rows[("physical", "cloud")]
    assert physical["n_images"] == 1 and 0.5 < physical["median_boa"] < 1.0
    assert scorer.image_ids("physical") == [sample["meta"]["id"]]


def test_folder_mode_matches_by_name(tmp_path: Path) -> None:
    preds, refs = tmp_path / "pred", tmp_path / "ref"
    preds.mkdir()
    refs.mkdir()
    truth = np.zeros((8, 8), np.uint8)
    truth[:4] = 1
    for folder, data in ((refs, truth), (preds, np.where(truth == 1, 9, 4).astype(np.uint8))):
        with rasterio.open(
            folder / "a.tif", "w", driver="GTiff", height=8, width=8, count=1, dtype="uint8"
        ) as ds:
            ds.write(data, 1)
    result = CliRunner().invoke(
        cli,
        [
            "benchmark",
            "--predictions",
            str(preds),
            "--references",
            str(refs),
            "--pred-scheme",
            "sen2cor",
            "--ref-scheme",
            "binary",
            "--report",
            str(tmp_path / "r"),
        ],
        standalone_mode=False,
    )
    assert result.exception is None, result.output
    rows = list(csv.DictReader((tmp_path / "r" / "summary.csv").open()))
    assert float(next(r for r in rows if r["task"] == "cloud")["median_boa"]) == 1.0


def test_cloudsen12_models_and_stored_layers_side_by_side(tmp_path: Path, maker) -> None:
    root = maker("cloudsen12").write(tmp_path / "cs12")
    report = tmp_path / "r"
    result = CliRunner().invoke(
        cli,
        [
            "benchmark",
            str(root),
            "--split",
            "test",
            "--models",
            "physical,layer:fmask,layer:manual_hq",
            "--report",
            str(report),
            "--quiet",
        ],
        standalone_mode=False,
        terminal_width=200,
    )
    assert result.exception is None, result.output
    rows = list(csv.DictReader((report / "summary.csv").open()))
    maskers = {r["masker"] for r in rows}
    assert {"physical", "layer:fmask", "layer:manual_hq"} <= maskers
    truth_vs_truth = [r for r in rows if r["masker"] == "layer:manual_hq" and r["median_boa"]]
    assert truth_vs_truth and all(float(r["median_boa"]) == 1.0 for r in truth_vs_truth)
    fmask = next(r for r in rows if r["masker"] == "layer:fmask" and r["task"] == "cloud")
    assert float(fmask["published_median_boa"]) == 0.841  # published values for layers too
    page = (report / "report.html").read_text()
    assert "Worst images" in page and "figures/failures/" in page  # quicklooks of the worst
    assert len(list((report / "figures" / "failures").glob("*.png"))) >= 3
    assert page.count('<img class="thumb"') >= 3  # the worst images in the per-image table


def test_folder_mode_refuses_other_grids(tmp_path: Path) -> None:
    from affine import Affine

    from s2clouds.benchmark.runner import benchmark_folders
    from s2clouds.errors import CRSMismatchError

    for folder, x0 in (("pred", 0), ("ref", 10)):
        (tmp_path / folder).mkdir()
        with rasterio.open(
            tmp_path / folder / "a.tif",
            "w",
            driver="GTiff",
            height=4,
            width=4,
            count=1,
            dtype="uint8",
            crs="EPSG:32632",
            transform=Affine(10, 0, x0, 0, -10, 0),
        ) as ds:
            ds.write(np.zeros((4, 4), np.uint8), 1)
    with pytest.raises(CRSMismatchError, match="different grids"):
        benchmark_folders(
            tmp_path / "pred", tmp_path / "ref", pred_scheme="canonical", ref_scheme="canonical"
        )


def test_shadowless_maskers_are_scored_on_cloud_only_whatever_the_protocol_spelling() -> None:
    from s2clouds.benchmark.runner import Masker, make_protocol

    scorer = make_protocol("CloudSEN12", [Masker.parse("s2cloudless"), Masker.parse("physical")])
    assert [t.name for t in scorer.tasks_for("s2cloudless")] == ["cloud"]
    assert [t.name for t in scorer.tasks_for("physical")] == ["cloud", "shadow", "valid"]


def test_sen12ms_cloud_free_patches_score_false_clouds(tmp_path: Path, maker) -> None:
    from s2clouds.benchmark.runner import run_benchmark
    from s2clouds.datasets.registry import open_dataset
    from s2clouds.errors import BenchmarkError

    root = tmp_path / "sen12ms"
    maker("sen12ms").write(root)
    dataset = open_dataset(root, "sen12ms", canonical=True)
    scorer = run_benchmark(dataset, ["physical"], limit=2, progress=False)
    assert scorer.maskers == ["physical"] and len(scorer.image_ids("physical")) == 2
    with pytest.raises(BenchmarkError, match="land-cover maps"):
        run_benchmark(dataset, ["physical"], protocol="sen12ms", progress=False)


def _summary_rows(root: Path, tmp_path: Path, *extra: str) -> list[dict[str, str]]:
    """``s2clouds benchmark ROOT --models physical --report DIR``: the rows of summary.csv."""
    report = tmp_path / "r"
    result = CliRunner().invoke(
        cli,
        [
            "benchmark",
            str(root),
            "--models",
            "physical",
            "--report",
            str(report),
            "--quiet",
            *extra,
        ],
        standalone_mode=False,
        terminal_width=200,
    )
    assert result.exception is None, result.output
    return list(csv.DictReader((report / "summary.csv").open()))


def test_cmc_benchmark_has_a_row_per_tag_stratum(tmp_path: Path, maker) -> None:
    make = maker("cmc")
    root = make.write(tmp_path / "cmc")
    rows = _summary_rows(root, tmp_path)
    cloud = {r["stratum"]: r for r in rows if r["task"] == "cloud"}
    # every tag group of the card: surface type (11), cloud type (7), height, thickness, extent
    assert len(make.TAG_COLUMNS) == 11 + 7 + 2 + 2 + 2
    assert list(cloud) == ["all", *make.TAG_COLUMNS]
    expected = {t: sum(t in tags for *_s, tags in make.SCENES) for t in make.TAG_COLUMNS}
    assert {s: int(r["n_images"]) for s, r in cloud.items()} == {"all": 4, **expected}
    assert cloud["forest/jungle"]["n_images"] == "2" and cloud["forest/jungle"]["boa"] != ""
    assert cloud["cumulonimbus"]["n_images"] == "0" and cloud["cumulonimbus"]["boa"] == ""
    groups = {r["group"] for r in cloud.values()}
    assert groups == {
        "all",
        "surface type",
        "cloud type",
        "cloud height",
        "cloud thickness",
        "cloud extent",
    }
    assert cloud["cirrus"]["group"] == "cloud type" and cloud["low"]["group"] == "cloud height"
    shadow = {r["stratum"]: r for r in rows if r["task"] == "shadow"}
    assert shadow["all"]["n_images"] == "3"  # one scene has no shadows marked


def test_cmc_benchmark_reads_other_spellings_and_reports_unknown_columns(
    tmp_path: Path, maker
) -> None:
    make = maker("cmc")
    root = make.write(tmp_path / "cmc")
    tags = root / "classification_tags.csv"
    lines = tags.read_text().splitlines()
    header = (
        lines[0].replace("forest/jungle", "Forest / Jungle").replace("open_water", "Open Water")
    )
    header = header.replace(",low,", ",low cloud,")
    lines = [f"{header},notes", *(f"{line},seen twice" for line in lines[1:])]
    tags.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="notes"):
        rows = _summary_rows(root, tmp_path, "-O", "tags=forest")
    cloud = {r["stratum"]: r for r in rows if r["task"] == "cloud"}
    assert cloud["all"]["n_images"] == "2" and cloud["forest/jungle"]["n_images"] == "2"
    assert "open_water" in cloud and "low" in cloud and "notes" not in cloud


def test_cloudsen12_benchmark_takes_reader_options_and_the_only_level(
    tmp_path: Path, maker
) -> None:
    root = maker("cloudsen12").write(tmp_path / "cs12")
    base = ["benchmark", str(root), "--split", "train", "--models", "physical", "--quiet"]
    for extra in ((), ("-O", "level=L2A", "-O", "label=manual_hq")):
        result = CliRunner().invoke(cli, [*base, *extra], terminal_width=200)
        assert result.exit_code == 0, result.output
        assert "cloud" in result.output
    refused = CliRunner().invoke(cli, [*base, "-O", "level=L1C"], standalone_mode=False)
    assert "-O level=L2A" in str(refused.exception)


def test_sen12ms_benchmark_scores_false_clouds_through_the_cli(tmp_path: Path, maker) -> None:
    root = tmp_path / "sen12ms"
    maker("sen12ms").write(root)
    (row,) = _summary_rows(root, tmp_path)
    report = tmp_path / "r"
    assert row["protocol"] == "false_cloud" and row["n_images"] == "6"
    assert 0.0 <= float(row["false_cloud"]) <= 1.0 and row["median_image_false_cloud"] != ""
    assert "False clouds" in (report / "report.html").read_text()


def test_spatiotemporal_benchmark_scores_the_centre_window(tmp_path: Path, maker) -> None:
    maker("temporal").write(tmp_path / "temporal")
    rows = _summary_rows(tmp_path / "temporal", tmp_path)
    assert {r["protocol"] for r in rows} == {"spatiotemporal"}
    overall = next(r for r in rows if r["class"] == "all")
    assert int(overall["truth_pixels"]) % 36 == 0 and overall["kappa"] != ""
