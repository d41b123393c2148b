import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2clouds.cli.main import main
from s2clouds.inference.batch import run_batch
from s2clouds.inference.distributed import ClusterOptions
from s2clouds.inference.inputs import expand_inputs
from s2clouds.inference.options import OutputOptions, PredictOptions, RunOptions
from s2clouds.inference.outputs import RUN_LOG, is_own_output, mask_name
from s2clouds.inference.predict import predict

RGBN = ["B02", "B03", "B04", "B08"]
SERIAL = ClusterOptions(workers=0)


def write_damaged_tail(path: Path, maker) -> Path:
    """A 640 x 64 px scene whose header and centre read fine but whose last strip is garbage:
    it passes the checks made when the batch is planned and fails in a late window."""
    stack = maker("geotiff").reflectance_stack(RGBN, 640)[:, :, :64]
    profile = dict(
        driver="GTiff", height=640, width=64, count=4, dtype="uint16", crs="EPSG:32632",
        transform=Affine(10, 0, 600000, 0, -10, 5000000), nodata=0, compress="deflate",
        interleave="band", blockysize=16,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.round(stack * 10000).astype("uint16"))
        for i, band in enumerate(RGBN, start=1):
            ds.set_band_description(i, band)
    with rasterio.open(path) as ds:
        last = 640 // 16 - 1
        spans = [
            (int(ds.get_tag_item(f"BLOCK_OFFSET_0_{last}", "TIFF", bidx=b)),
             int(ds.get_tag_item(f"BLOCK_SIZE_0_{last}", "TIFF", bidx=b)))
            for b in range(1, 5)
        ]  # fmt: skip
    with open(path, "r+b") as f:
        for offset, size in spans:
            f.seek(offset)
            f.write(b"\x07" * size)
    return path


@pytest.fixture
def archive(tmp_path: Path, maker) -> Path:
    """Three good scenes, one file that is not a raster, one damaged late in the file."""
    folder = tmp_path / "archive"
    folder.mkdir()
    make = maker("geotiff")
    for i in range(3):
        make.write_multiband(folder / f"S2_{i}.tif", RGBN, size=96)
    (folder / "corrupt.tif").write_bytes(b"II*\x00 this is not a GeoTIFF")
    write_damaged_tail(folder / "damaged.tif", maker)
    return folder


def test_inputs_from_globs_lists_and_files(tmp_path: Path) -> None:
    for name in ("a.tif", "b.tif", "a_cloudmask.tif", "a_cloudmask.proba.tif"):
        (tmp_path / name).touch()
    listing = tmp_path / "list.txt"
    listing.write_text("# scenes\nb.tif\n\n/abs/c.SAFE\n*.tif\n")
    pattern = str(tmp_path / "*.tif")
    inputs = expand_inputs([pattern, f"@{listing}", str(tmp_path / "none*.jp2")])
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    assert inputs == [a, b, "/abs/c.SAFE", str(tmp_path / "none*.jp2")]
    assert expand_inputs([], from_file=listing) == [b, "/abs/c.SAFE", a]
    assert is_own_output("x/T32_cloudmask.tif") and not is_own_output("x/T32.tif")
    assert mask_name("S2A MSIL1C/2022") == "S2A_MSIL1C_2022_cloudmask.tif"


def test_batch_reports_failures_and_resumes(archive: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "masks"
    argv = ["predict", str(archive / "*.tif"), "-o", str(out), "--block", "64", "--workers", "0"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "3 done, 0 skipped (already there), 2 failed" in captured.out
    assert "failed: " + str(archive / "corrupt.tif") in captured.err
    log = json.loads((out / RUN_LOG).read_text())
    by_input = {Path(s["input"]).name: s for s in log["scenes"]}
    assert log["counts"] == {"done": 3, "skipped": 0, "failed": 2}
    assert "damaged or not a raster" in by_input["corrupt.tif"]["error"]
    assert (
        by_input["damaged.tif"]["status"] == "failed" and by_input["damaged.tif"]["windows"] == 10
    )
    assert "re-download" in by_input["damaged.tif"]["error"]  # failed in a late window
    done = by_input["S2_0.tif"]
    assert done["output"] == str(out / "S2_0_cloudmask.tif") and done["seconds"] > 0
    with rasterio.open(out / "S2_0_cloudmask.tif") as ds:
        written = ds.read(1)
    assert done["cloud_percent"] == pytest.approx(100 * np.isin(written, (1, 2)).mean(), abs=1e-3)
    assert 2 < done["cloud_percent"] < 12  # a 24 x 24 px cloud (6.25%) of the fixture
    assert sorted(p.name for p in out.iterdir()) == [
        "S2_0_cloudmask.tif", "S2_1_cloudmask.tif", "S2_2_cloudmask.tif", RUN_LOG,
    ]  # fmt: skip
    reference = tmp_path / "ref.tif"
    predict(
        archive / "S2_1.tif", reference, PredictOptions(run=RunOptions(block=64), progress=False)
    )
    with rasterio.open(out / "S2_1_cloudmask.tif") as got, rasterio.open(reference) as ref:
        np.testing.assert_array_equal(got.read(), ref.read())
        assert got.tags()["SOURCE"] == "S2_1"

    first_mtime = os.stat(out / "S2_0_cloudmask.tif").st_mtime_ns
    with pytest.raises(SystemExit):
        main(argv)
    rerun = json.loads((out / RUN_LOG).read_text())
    assert rerun["counts"] == {"done": 0, "skipped": 3, "failed": 2}
    skipped = next(s for s in rerun["scenes"] if s["input"].endswith("S2_0.tif"))
    assert skipped["cloud_percent"] == done["cloud_percent"]  # carried from the first run
    assert os.stat(out / "S2_0_cloudmask.tif").st_mtime_ns == first_mtime

    with pytest.raises(SystemExit):
        main([*argv, "--overwrite", "--quiet"])
    assert json.loads((out / RUN_LOG).read_text())["counts"]["done"] == 3
    assert os.stat(out / "S2_0_cloudmask.tif").st_mtime_ns != first_mtime


def test_all_good_exits_zero_and_names_outputs_by_product_id(tmp_path: Path, maker) -> None:
    make = maker("geotiff")
    first = make.write_multiband(tmp_path / "one.tif", RGBN, size=64)
    folder = make.write_band_folder(tmp_path / "T32TQM_20220615", RGBN, size=64)
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"{first}\nT32TQM_20220615\n")
    out = tmp_path / "out"
    argv = ["predict", "--from-file", str(listing), "-o", str(out), "--quiet", "--workers", "0"]
    assert main(argv) is None
    assert (out / "one_cloudmask.tif").exists() and (out / "T32TQM_20220615_cloudmask.tif").exists()
    twin = make.write_band_folder(tmp_path / "other" / "T32TQM_20220615", RGBN, size=64)
    result = run_batch(
        [str(folder), str(twin)], tmp_path / "twins", PredictOptions(progress=False),
        cluster=SERIAL,
    )  # fmt: skip
    assert result.exit_code == 1 and [r.status for r in result.records] == ["done", "failed"]
    assert "same product id" in (result.records[1].error or "")


def test_probabilities_count_as_part_of_a_finished_scene(tmp_path: Path, maker) -> None:
    scene = maker("geotiff").write_multiband(tmp_path / "s.tif", RGBN, size=64)
    out = tmp_path / "out"
    run_batch([str(scene)], out, PredictOptions(progress=False), cluster=SERIAL)
    resume = OutputOptions(probabilities=True, overwrite=False)
    with_probs = PredictOptions(output=resume, progress=False)
    result = run_batch([str(scene)], out, with_probs, cluster=SERIAL)
    assert result.records[0].status == "done"  # the mask alone was not enough
    assert (out / "s_cloudmask.proba.tif").exists()
    assert run_batch([str(scene)], out, with_probs).records[0].status == "skipped"


def test_single_input_keeps_output_file_and_refuses_batch_only_options(
    tmp_path: Path, maker
) -> None:
    scene = maker("geotiff").write_multiband(tmp_path / "s.tif", RGBN, size=64)
    main(["predict", str(scene), "-o", str(tmp_path / "mask.tif"), "--quiet"])
    assert (tmp_path / "mask.tif").exists() and not (tmp_path / RUN_LOG).exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(scene), str(tmp_path / "x.tif"), "-o", str(tmp_path / "m.tif")])
    assert exit_info.value.code == 2  # several inputs need a folder


def test_a_batch_refuses_a_quicklook_and_overwrite_means_redo(tmp_path: Path, maker) -> None:
    from s2clouds.errors import OutputError

    scene = maker("geotiff").write_multiband(tmp_path / "s.tif", RGBN, size=64)
    quicklook = PredictOptions(output=OutputOptions(quicklook=tmp_path / "q.png"))
    with pytest.raises(OutputError, match="single scene"):
        run_batch([str(scene)], tmp_path / "out", quicklook)
    keep = PredictOptions(output=OutputOptions(overwrite=False), progress=False)
    redo = PredictOptions(output=OutputOptions(overwrite=True), progress=False)
    assert run_batch([str(scene)], tmp_path / "out", keep).records[0].status == "done"
    assert run_batch([str(scene)], tmp_path / "out", keep).records[0].status == "skipped"
    assert run_batch([str(scene)], tmp_path / "out", redo).records[0].status == "done"
