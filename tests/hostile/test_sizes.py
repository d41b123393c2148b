"""Ordinary sizes that are not multiples of 2, 3, 6 or the block: every reader and output
path must give a mask of the expected size, never a reshape error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.inference.options import OutputOptions, PredictOptions, ReadOptions, RunOptions
from s2clouds.inference.predict import predict
from s2clouds.io.scenes import read_scene

BANDS = ["B02", "B03", "B04", "B08"]


def coarse_size(size: int, factor: int) -> int:
    """The grid size at ``factor`` times the pixel size: rounded up, so that the grid covers
    the whole input (as Grid.at_resolution does)."""
    return max(1, -(-size // factor))


@pytest.mark.parametrize(
    ("size", "resolution"),
    [(511, 20), (509, 60), (515, 60), (127, 20), (131, 60), (97, 10), (5, 60)],
)
def test_band_folder_at_coarse_resolutions(
    tmp_path: Path, maker, size: int, resolution: int
) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", BANDS, size=size)
    options = PredictOptions(
        read=ReadOptions(resolution=resolution), run=RunOptions(block=64), progress=False
    )
    result = predict(folder, tmp_path / "mask.tif", options)
    expected = coarse_size(size, resolution // 10)
    assert result.shape == (expected, expected)
    with rasterio.open(tmp_path / "mask.tif") as ds:
        mask = ds.read(1)
    assert mask.shape == (expected, expected)
    assert np.all(mask[:-1, :-1] != 255)  # whole coarse pixels are all valid


def test_last_coarse_pixel_averages_only_existing_pixels(tmp_path: Path, maker) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", ["B02"], size=7)
    with rasterio.open(folder / "B02.tif") as ds:
        fine = ds.read(1).astype(np.float64) / 10000
    coarse = read_scene(folder, resolution=20).read()[0]
    assert coarse.shape == (4, 4)
    assert coarse[3, 3] == pytest.approx(fine[6, 6], rel=1e-5)
    assert coarse[0, 3] == pytest.approx(fine[0:2, 6].mean(), rel=1e-5)


@pytest.mark.parametrize("size", [1103, 517])
def test_quicklook_and_physical_without_sun_angles(tmp_path: Path, maker, size: int) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", BANDS, size=size)
    quicklook = tmp_path / "ql.png"
    options = PredictOptions(
        output=OutputOptions(quicklook=quicklook), run=RunOptions(model="physical"), progress=False
    )
    result = predict(folder, tmp_path / "mask.tif", options)
    assert result.shape == (size, size)
    assert quicklook.stat().st_size > 0


@pytest.mark.parametrize(("size", "resolution"), [(131, 20), (133, 60)])
def test_multiband_geotiff_with_probabilities(
    tmp_path: Path, maker, size: int, resolution: int
) -> None:
    tif = maker("geotiff").write_multiband(tmp_path / "scene.tif", BANDS, size=size)
    options = PredictOptions(
        output=OutputOptions(probabilities=True),
        read=ReadOptions(resolution=resolution),
        run=RunOptions(block=64),
        progress=False,
    )
    result = predict(tif, tmp_path / "mask.tif", options)
    expected = coarse_size(size, resolution // 10)
    assert result.shape == (expected, expected)
    with rasterio.open(tmp_path / "mask.proba.tif") as ds:
        assert ds.shape == (expected, expected)


@pytest.mark.parametrize("model", ["s2clouds-tiny-rgbn", "physical", "s2clouds-pixel-rgbn"])
@pytest.mark.parametrize(("size", "resolution"), [(97, 20), (131, 60), (7, 10)])
def test_every_model_at_odd_sizes(
    tmp_path: Path, maker, model: str, size: int, resolution: int
) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", BANDS, size=size)
    options = PredictOptions(
        read=ReadOptions(resolution=resolution),
        run=RunOptions(model=model, block=64),
        progress=False,
    )
    result = predict(folder, tmp_path / "mask.tif", options)
    expected = coarse_size(size, resolution // 10)
    assert result.shape == (expected, expected) and result.valid_fraction > 0.5


def test_annotate_at_an_odd_size(tmp_path: Path, maker) -> None:
    pytest.importorskip("lightgbm")
    from s2clouds.train.annotate import annotate

    size = 101
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", BANDS, size=size)
    with rasterio.open(folder / "B02.tif") as ds:
        profile = ds.profile | {"dtype": "uint8", "nodata": 255}
    strokes = np.full((1, size, size), 255, np.uint8)
    strokes[0, 80:82, 5:95] = 0  # vegetation
    strokes[0, 30, 28:48] = 1  # inside the fixture's cloud block
    with rasterio.open(tmp_path / "scribbles.tif", "w", **profile) as ds:
        ds.write(strokes)
    options = PredictOptions(
        output=OutputOptions(probabilities=True), run=RunOptions(block=64), progress=False
    )
    scribbles, mask = tmp_path / "scribbles.tif", tmp_path / "mask.tif"
    result = annotate(folder, scribbles, mask, rounds=5, options=options)
    assert result.prediction.shape == (size, size)
