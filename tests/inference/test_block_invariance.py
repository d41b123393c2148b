"""Masks do not depend on memory knobs (``--block``, workers) for any driver, on scenes many
blocks wide: a 13-band COG with overviews (the 20 m model reads them), the same file without
overviews (windows larger than one model call), a JPEG 2000 band folder, and a series.
(The composite's own test covers its blocks and Dask: tests/mosaic/test_composite.py.)"""

from __future__ import annotations

import glob
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling

from s2clouds.bands import native_resolution
from s2clouds.inference.options import OutputOptions, PredictOptions, RunOptions
from s2clouds.inference.predict import predict
from s2clouds.inference.window import model_pieces, predict_window, prepare_scene
from s2clouds.io.scenes import read_scene
from s2clouds.models.base import ModelContext

PATCHES = "sen12mscr/pairs/*/cloudy.tif"
SIDE = 1536  # six blocks of 256 px a side
BLOCK = 256


def cloudy_cog(real_data: Path, target: Path, *, overviews: bool, side: int = SIDE) -> Path:
    """A 13-band L1C GeoTIFF of ``side`` px tiled from the real cloudy patches (256 px each),
    band-interleaved in 256 px tiles, with average overviews at 2 and 4 when ``overviews``."""
    files = sorted(glob.glob(str(real_data / PATCHES)))
    if not files:
        pytest.skip("the real SEN12MS-CR pairs are not present")
    k = side // 256
    image = np.zeros((13, side, side), np.uint16)
    for i in range(k):
        for j in range(k):
            with rasterio.open(files[(i * k + j) % len(files)]) as ds:
                image[:, i * 256 : (i + 1) * 256, j * 256 : (j + 1) * 256] = ds.read()
                descriptions = ds.descriptions
    profile = {
        "driver": "GTiff",
        "height": side,
        "width": side,
        "count": 13,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": Affine(10, 0, 400000, 0, -10, 5000000),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "interleave": "band",
        "nodata": 0,
        "compress": "deflate",
    }
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(image)
        dst.descriptions = descriptions
        dst.update_tags(MEAN_SOLAR_ZENITH_ANGLE="40.0", MEAN_SOLAR_AZIMUTH_ANGLE="150.0")
    if overviews:
        with rasterio.open(target, "r+") as dst:
            dst.build_overviews([2, 4], Resampling.average)
    return target


def predicted(source: Path, output: Path, block: int, cluster: object = None) -> np.ndarray:
    """Mask and probabilities (5, H, W) uint8 of ``source`` predicted with ``block``."""
    options = PredictOptions(
        run=RunOptions(block=block), output=OutputOptions(probabilities=True), progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a local cluster's own warnings
        predict(source, output, options, cluster=cluster)  # type: ignore[arg-type]
    with rasterio.open(output) as mask, rasterio.open(output.with_suffix(".proba.tif")) as p:
        return np.concatenate([mask.read(), p.read()])


def assert_same(blocked: np.ndarray, whole: np.ndarray, what: str) -> None:
    """Masks equal; probabilities (whole percent) equal but where float32 running sums of
    window features tip a value across a half percent."""
    np.testing.assert_array_equal(blocked[0], whole[0], err_msg=what)
    difference = np.abs(blocked[1:].astype(int) - whole[1:].astype(int))
    assert difference.max() <= 1 and np.mean(difference > 0) < 1e-4, what


@pytest.mark.slow
def test_a_cog_with_overviews_gives_one_mask_for_any_block_and_workers(
    real_data: Path, tmp_path: Path
) -> None:
    from s2clouds.inference.distributed import ClusterOptions

    cog = cloudy_cog(real_data, tmp_path / "scene.tif", overviews=True)
    whole = predicted(cog, tmp_path / "whole.tif", SIDE)  # one window
    assert 0.05 < np.mean(whole[0] == 1) < 0.9 and np.mean(whole[0] == 3) > 0.01
    assert_same(predicted(cog, tmp_path / "b256.tif", BLOCK), whole, "block 256")
    assert_same(predicted(cog, tmp_path / "b200.tif", 200), whole, "block 200")
    cluster = ClusterOptions(workers=2, processes=False, dashboard=False)
    assert_same(predicted(cog, tmp_path / "dask.tif", BLOCK, cluster), whole, "Dask")


@pytest.mark.slow
def test_windows_larger_than_one_model_call_are_cut_into_pieces(
    real_data: Path, tmp_path: Path
) -> None:
    """Without overviews the 20 m model reads every 10 m pixel: a window with its halo may
    exceed the model's tile. It is computed in pieces that fit one call, never in
    feathered tiles (whose seams, and per-tile shadow constraint, moved with the block:
    2 % of a 4096 px scene changed between --block 512 and 2048)."""
    cog = cloudy_cog(real_data, tmp_path / "plain.tif", overviews=False)
    scene, model = prepare_scene(read_scene(cog), RunOptions())
    model.spec = replace(model.spec, tile_size=1024)  # a 1536 px window no longer fits
    run, context = RunOptions(block=SIDE), ModelContext.of_scene(scene)
    full = scene.grid.full_window()
    pieces = model_pieces(scene, model, full, run, context)
    assert len(pieces) > 1
    assert sum(p.height * p.width for p in pieces) == SIDE * SIDE
    whole_mask, whole_probs = predict_window(scene, model, full, run, context)
    mask = np.zeros_like(whole_mask)
    for window in scene.grid.windows(BLOCK):
        mask[window.slices], probs = predict_window(scene, model, window, run, context)
        np.testing.assert_allclose(probs, whole_probs[(slice(None), *window.slices)], atol=1e-5)
    np.testing.assert_array_equal(mask, whole_mask)


def jp2_band_folder(cog: Path, folder: Path) -> Path:
    """The bands of ``cog`` as JPEG 2000 files at their native resolutions (10, 20, 60 m:
    block means), one per band as in a SAFE product (``B02.jp2``, ...)."""
    folder.mkdir()
    with rasterio.open(cog) as src:
        side = src.width
        for index, name in enumerate(src.descriptions, start=1):
            factor = native_resolution(name) // 10
            data = src.read(index).astype(np.float64)
            data = data.reshape(side // factor, factor, side // factor, factor).mean(axis=(1, 3))
            profile = {
                "driver": "JP2OpenJPEG",
                "height": side // factor,
                "width": side // factor,
                "count": 1,
                "dtype": "uint16",
                "crs": src.crs,
                "nodata": 0,
                "transform": src.transform @ Affine.scale(factor),
                "QUALITY": 100,
                "REVERSIBLE": "YES",
                "BLOCKXSIZE": 512,
                "BLOCKYSIZE": 512,
            }
            with rasterio.open(folder / f"{name}.jp2", "w", **profile) as dst:
                dst.write(np.rint(data).astype(np.uint16), 1)
    return folder


@pytest.mark.slow
def test_a_jpeg2000_band_folder_gives_one_mask_for_any_block(
    real_data: Path, tmp_path: Path
) -> None:
    """JPEG 2000 resolution levels are read for the 20 m model (their wavelet low-passes are
    no exact block means, but the same for every window)."""
    cog = cloudy_cog(real_data, tmp_path / "scene.tif", overviews=False, side=768)
    folder = jp2_band_folder(cog, tmp_path / "bands")
    whole = predicted(folder, tmp_path / "whole.tif", 768)  # one window
    assert 0.05 < np.mean(whole[0] == 1) < 0.9
    assert_same(predicted(folder, tmp_path / "b128.tif", 128), whole, "block 128")
    assert_same(predicted(folder, tmp_path / "b200.tif", 200), whole, "block 200")


@pytest.mark.slow
def test_series_masks_do_not_depend_on_block_or_workers(real_data: Path, tmp_path: Path) -> None:
    """The series refinement decides some things per window (each date's radiometric
    offset, its shadow direction): its windows are fixed, whatever --block says."""
    from s2clouds.inference.distributed import ClusterOptions
    from s2clouds.inference.series import predict_series

    dates = sorted(glob.glob(str(real_data / "sen12mscr/timeseries/ROIs2017_146_p0/2018-0[23]*")))
    if len(dates) < 3:
        pytest.skip("the real SEN12MS-CR-TS series is not present")

    def masks(folder: Path, block: int, cluster: object = None) -> list[np.ndarray]:
        options = PredictOptions(run=RunOptions(block=block), progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = predict_series(dates, folder, options, cluster=cluster)  # type: ignore[arg-type]
        out = []
        for record in result.dates:
            with rasterio.open(record.output) as ds:
                out.append(ds.read(1))
        return out

    whole = masks(tmp_path / "whole", 1024)
    assert any(np.mean(m == 1) > 0.01 for m in whole)
    cluster = ClusterOptions(workers=2, processes=False, dashboard=False)
    for what, got in (
        ("block 64", masks(tmp_path / "b64", 64)),
        ("Dask", masks(tmp_path / "dask", 64, cluster)),
    ):
        for date, (mask, reference) in enumerate(zip(got, whole, strict=True)):
            np.testing.assert_array_equal(mask, reference, err_msg=f"{what}, date {date}")
