"""Outputs never overwrite inputs: every output a command writes (mask, probabilities,
quicklook, run log, saved model) is refused when it is a file the command reads, through
symlinks and hard links too, or another output of the same run. Each refusal exits 2 with
one line, and leaves every file as it was."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2clouds.errors import OutputError
from s2clouds.inference.batch import run_batch
from s2clouds.inference.outputs import RUN_LOG
from s2clouds.io.paths import check_outputs, local_file

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
Frozen = Callable[[Path], Callable[[], None]]


@pytest.fixture
def folder(tmp_path: Path, maker) -> Path:
    """A band folder with B11 beside the four bands the default model reads."""
    return maker("geotiff").write_band_folder(tmp_path / "scene", [*RGBN, "B11"], size=64)


@pytest.fixture
def tif(tmp_path: Path, maker) -> Path:
    return maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=64)


@pytest.mark.parametrize("band", ["B08", "B11"])
def test_predict_into_a_band_of_the_input_folder(
    folder: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, band: str
) -> None:
    """B11 is not used by the model, but the reader opened it: it is an input too."""
    check = frozen(tmp_path)
    err = refuse(["predict", str(folder), "-o", str(folder / f"{band}.tif"), "--quiet"])
    assert err.startswith(f"error: the mask (-o) {folder / band}.tif is the input file")
    assert "choose another path" in err
    check()


def test_quicklook_over_the_input_or_the_mask(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen
) -> None:
    check = frozen(tmp_path)
    mask = tmp_path / "mask.tif"
    err = refuse(["predict", str(tif), "-o", str(mask), "--quicklook", str(tif), "--quiet"])
    assert "--quicklook" in err and "input file" in err
    err = refuse(["predict", str(tif), "-o", str(mask), "--quicklook", str(mask), "--quiet"])
    assert "the quicklook (--quicklook)" in err and "is also the mask (-o)" in err
    check()


def test_probabilities_over_the_input(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen
) -> None:
    scene = maker("geotiff").write_multiband(tmp_path / "X.proba.tif", RGBN, size=64)
    check = frozen(tmp_path)
    err = refuse(["predict", str(scene), "-o", str(tmp_path / "X.tif"), "--probabilities"])
    assert "--probabilities" in err and "X.proba.tif" in err
    check()


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_links_to_the_input_are_the_input(
    tif: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen, link: str
) -> None:
    other = tmp_path / "elsewhere.tif"
    (os.symlink if link == "symlink" else os.link)(tif, other)
    check = frozen(tmp_path)
    assert "is the input file" in refuse(["predict", str(tif), "-o", str(other), "--quiet"])
    assert "is the input file" in refuse(["predict", str(other), "-o", str(tif), "--quiet"])
    check()


def test_safe_product_files_are_inputs(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen
) -> None:
    safe = maker("safe").write(tmp_path)
    check = frozen(tmp_path)
    assert "is the input file" in refuse(
        ["predict", str(safe), "-o", str(safe / "MTD_MSIL1C.xml"), "--quiet"]
    )
    band = next(safe.rglob("*_B08.jp2"))
    assert "is the input file" in refuse(["predict", str(safe), "-o", str(band), "--quiet"])
    check()


def test_annotate_outputs_over_scene_scribbles_or_each_other(
    folder: Path, tmp_path: Path, refuse: Refuse, frozen: Frozen
) -> None:
    with rasterio.open(folder / "B02.tif") as ds:
        profile = ds.profile | {"dtype": "uint8", "nodata": 255}
    scribbles = tmp_path / "scribbles.tif"
    with rasterio.open(scribbles, "w", **profile) as ds:
        ds.write(np.full((1, 64, 64), 255, np.uint8))
    check = frozen(tmp_path)
    base = ["annotate", str(folder), "--scribbles", str(scribbles), "--quiet"]
    assert "is the input file" in refuse([*base, "-o", str(folder / "B08.tif")])
    assert "is the input file" in refuse([*base, "-o", str(scribbles)])
    assert "is the input file" in refuse(
        [*base, "-o", str(tmp_path / "m.tif"), "--quicklook", str(scribbles)]
    )
    model = str(tmp_path / "m.lgbm")
    assert "is also the mask (-o)" in refuse([*base, "-o", model, "--save-model", model])
    check()


def test_labels_translate_over_its_input(tmp_path: Path, refuse: Refuse, frozen: Frozen) -> None:
    labels = tmp_path / "labels.tif"
    profile = {"driver": "GTiff", "height": 9, "width": 7, "count": 1, "dtype": "uint8"}
    profile["transform"] = Affine(10, 0, 0, 0, -10, 0)
    with rasterio.open(labels, "w", **profile) as ds:
        ds.write(np.zeros((1, 9, 7), np.uint8))
    check = frozen(tmp_path)
    argv = ["labels", "translate", str(labels), "--from", "canonical", "--to", "fmask"]
    assert "is the input file" in refuse([*argv, "-o", str(labels)])
    check()


def test_batch_run_log_over_an_input(tif: Path, tmp_path: Path, frozen: Frozen) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    log = outdir / RUN_LOG
    log.write_text("{}")
    check = frozen(tmp_path)
    with pytest.raises(OutputError, match="run log"):
        run_batch([str(tif), str(log)], outdir)
    check()


def test_check_outputs_allows_new_and_distinct_paths(tmp_path: Path) -> None:
    source = tmp_path / "in.tif"
    source.write_bytes(b"x")
    check_outputs({"-o": tmp_path / "out.tif", "--quicklook": None}, [source, None])
    with pytest.raises(OutputError, match="is also the mask"):
        check_outputs({"the mask": tmp_path / "a.tif", "the PNG": tmp_path / "x/../a.tif"}, [])


def test_archive_paths_resolve_to_the_archive(tmp_path: Path) -> None:
    archive = tmp_path / "S2B.zip"
    archive.write_bytes(b"PK")
    assert local_file(f"/vsizip/{archive}/S2B.SAFE/GRANULE/B02.jp2") == archive
    assert local_file("/vsicurl/https://example.com/B02.tif") is None
    assert local_file("https://example.com/B02.tif") is None


def test_a_new_mask_inside_the_input_folder_is_fine(folder: Path) -> None:
    """Only files that are read are protected: a mask beside the bands is written, twice."""
    from s2clouds.cli.main import main

    for _ in range(2):
        main(["predict", str(folder), "-o", str(folder / "mask.tif"), "--quiet"])
    assert (folder / "mask.tif").is_file()


def test_stac_assets_are_inputs(tmp_path: Path, maker, refuse: Refuse, frozen: Frozen) -> None:
    maker("geotiff").write_band_folder(tmp_path / "bands", RGBN, size=64)
    item = tmp_path / "item.json"
    assets = {
        b: {"href": f"bands/{b}.tif", "roles": ["data"], "eo:bands": [{"name": b}]} for b in RGBN
    }
    item.write_text(
        json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": "x", "assets": assets})
    )
    check = frozen(tmp_path)
    assert "is the input file" in refuse(
        ["predict", str(item), "-o", str(tmp_path / "bands" / "B04.tif"), "--quiet"]
    )
    assert "is the input file" in refuse(["predict", str(item), "-o", str(item), "--quiet"])
    check()
