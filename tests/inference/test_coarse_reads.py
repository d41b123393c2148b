"""Large-scene paths: the 20 m models read overviews, and shadow is constrained by a scene map.

A full tile spends most of its time decoding 10 m pixels that a 20 m model averages anyway,
and reading a 2.5 km halo around each window for the shadow reach. These tests check that
both shortcuts give the masks the exact paths give, on a real 13-band Sentinel-2 image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from s2clouds.inference import window as window_module
from s2clouds.inference.options import OutputOptions, PredictOptions, RunOptions
from s2clouds.inference.predict import predict
from s2clouds.io.bands import read_raster_window
from s2clouds.io.grid import CoarseMask, Window
from s2clouds.io.headers import raster_info
from s2clouds.io.overviews import approximate_overviews, overview_factors
from s2clouds.io.scenes import read_scene
from s2clouds.models.base import ModelContext
from s2clouds.models.registry import get_model

PAIR = "sen12mscr/pairs/ROIs1158_spring_26_p100/cloudy.tif"


def copy_with_overviews(source: Path, target: Path, overviews: bool) -> Path:
    """``source`` as a tiled, band-interleaved GeoTIFF (128 px tiles), with average
    overviews at 2 and 4 when ``overviews``."""
    with rasterio.open(source) as src:
        profile = src.profile | {
            "tiled": True,
            "blockxsize": 128,
            "blockysize": 128,
            "interleave": "band",
            "nodata": 0,
        }
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(src.read())
            dst.descriptions = src.descriptions
            dst.update_tags(MEAN_SOLAR_ZENITH_ANGLE="40.0", MEAN_SOLAR_AZIMUTH_ANGLE="150.0")
    if overviews:
        with rasterio.open(target, "r+") as dst:
            dst.build_overviews([2, 4], Resampling.average)
    return target


@pytest.fixture
def pair_files(real_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    source = real_data / PAIR
    if not source.exists():
        pytest.skip(f"{source} not present")
    plain = copy_with_overviews(source, tmp_path / "plain.tif", overviews=False)
    pyramid = copy_with_overviews(source, tmp_path / "pyramid.tif", overviews=True)
    return plain, pyramid


def masks(source: Path, output: Path, block: int) -> np.ndarray:
    options = PredictOptions(
        run=RunOptions(model="auto", block=block),
        output=OutputOptions(probabilities=True),
        progress=False,
    )
    predict(source, output, options)
    with rasterio.open(output) as ds:
        return ds.read(1)


def test_overview_reads_are_block_means(pair_files: tuple[Path, Path]) -> None:
    plain, pyramid = pair_files
    assert overview_factors(str(plain)) == {}
    assert overview_factors(str(pyramid)) == {2: 0, 4: 1}
    grid = raster_info(pyramid).grid.at_resolution(20.0)
    window = Window(6, 12, 90, 70)
    exact = read_raster_window(str(plain), range(1, 14), 0, grid, window)
    fast = read_raster_window(str(pyramid), range(1, 14), 0, grid, window)
    assert fast.shape == exact.shape == (13, 90, 70)
    assert np.nanmax(np.abs(fast - exact)) <= 0.5  # the overview rounds means to whole DN


def test_only_overviews_that_hold_block_means_are_used(
    pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """Nearest-neighbour overviews and JPEG 2000 resolution levels (wavelet low-passes,
    which moved 2 % of mask pixels on cloudy pairs) are left alone: the file is read in
    full, as without overviews."""
    plain, _ = pair_files
    with rasterio.open(plain) as src:
        profile, data = src.profile, src.read()
    nearest = tmp_path / "nearest.tif"
    with rasterio.open(nearest, "w", **profile) as dst:
        dst.write(data)
    with rasterio.open(nearest, "r+") as dst:
        dst.build_overviews([2, 4], Resampling.nearest)
    jp2 = tmp_path / "b02.jp2"
    jp2_profile = {
        "driver": "JP2OpenJPEG",
        "width": 256,
        "height": 256,
        "count": 1,
        "dtype": "uint16",
        "crs": profile["crs"],
        "transform": profile["transform"],
        "QUALITY": 100,
        "REVERSIBLE": "YES",
        "RESOLUTIONS": 3,
        "BLOCKXSIZE": 128,
        "BLOCKYSIZE": 128,
    }
    with rasterio.open(jp2, "w", **jp2_profile) as dst:
        dst.write(data[1:2])
    with rasterio.open(jp2) as ds:
        assert ds.overviews(1)  # GDAL shows the resolution levels as overviews
    assert overview_factors(str(nearest)) == {}
    assert overview_factors(str(jp2)) == {}
    grid = raster_info(jp2).grid.at_resolution(20.0)
    exact = read_raster_window(str(plain), [2], 0, grid, Window(0, 0, 128, 128))
    np.testing.assert_array_equal(
        read_raster_window(str(jp2), [1], 0, grid, Window(0, 0, 128, 128)), exact
    )
    # a map that needs no exact means (the shadow reach) may read the wavelet levels
    with approximate_overviews():
        rough = read_raster_window(str(jp2), [1], 0, grid, Window(0, 0, 128, 128))
    assert not np.array_equal(rough, exact)
    assert np.median(np.abs(rough - exact)) < 0.02 * np.median(exact)


def test_a_replaced_file_is_read_afresh(pair_files: tuple[Path, Path], tmp_path: Path) -> None:
    plain, _ = pair_files
    grid = raster_info(plain).grid
    before = read_raster_window(str(plain), [2], 0, grid, Window(0, 0, 8, 8))
    with rasterio.open(plain, "r+") as ds:
        ds.write(np.full((1, 256, 256), 777, np.uint16), indexes=[2])
    after = read_raster_window(str(plain), [2], 0, grid, Window(0, 0, 8, 8))
    assert not np.array_equal(before, after) and np.all(after == 777)


def test_the_20m_model_reads_overviews_and_agrees(
    pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    plain, pyramid = pair_files
    scene = read_scene(pyramid)
    model = get_model("auto", scene.bands, scene.level)
    context = ModelContext.of_scene(scene)
    assert window_module.read_factor(scene.select(model.bands), model, context) == 2
    assert window_module.read_factor(read_scene(plain).select(model.bands), model, context) == 1
    exact = masks(plain, tmp_path / "exact.tif", 1024)
    fast = masks(pyramid, tmp_path / "fast.tif", 1024)
    assert np.mean(fast != exact) < 0.002
    blocked = masks(pyramid, tmp_path / "blocked.tif", 64)
    np.testing.assert_array_equal(blocked, fast)  # still independent of the block


def test_scene_shadow_map_replaces_the_halo(
    pair_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, _ = pair_files
    halo_path = masks(plain, tmp_path / "halo.tif", 1024)
    # treat the 256 px image as a large scene: its shadow map from a 40 m overview
    monkeypatch.setattr(window_module, "SCENE_REACH_MIN_PX", 64)
    monkeypatch.setattr(window_module, "SHADOW_MAP_OVERVIEW_PX", 64)
    scene = read_scene(plain)
    model = get_model("auto", scene.bands, scene.level)
    prepared, _ = window_module.prepare_scene(scene, RunOptions(model="auto"))
    reach = prepared.priors["shadow_reach"]
    assert isinstance(reach, CoarseMask) and reach.factor == 4 and reach.shape == (64, 64)
    context = ModelContext.of_scene(prepared)
    assert context.scene_shadow_reach is True
    assert model.required_halo(context) < model.required_halo(ModelContext.of_scene(scene)) / 3
    mapped = masks(plain, tmp_path / "map.tif", 1024)
    assert np.mean(mapped != halo_path) < 0.01  # the same masks, up to the map's coarseness
    shadow = mapped == 3
    assert shadow.any() and np.all(reach.window(Window(0, 0, 256, 256))[shadow])
    np.testing.assert_array_equal(masks(plain, tmp_path / "map64.tif", 64), mapped)


def test_coarse_mask_windows_read_the_packed_map() -> None:
    rng = np.random.default_rng(1)
    data = rng.random((37, 53)) > 0.5
    mask = CoarseMask.of(data, 3)
    np.testing.assert_array_equal(mask.data, data)
    for window in (Window(0, 0, 111, 159), Window(5, 7, 40, 30), Window(100, 150, 20, 20)):
        rows = np.minimum(np.arange(window.row, window.row + window.height) // 3, 36)
        cols = np.minimum(np.arange(window.col, window.col + window.width) // 3, 52)
        np.testing.assert_array_equal(mask.window(window), data[np.ix_(rows, cols)])
