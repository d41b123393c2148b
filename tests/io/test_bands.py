"""Band sources answer the contract of :class:`~s2clouds.io.bands.BandSource`: what they read
from, its data type, tags and levels, and which of them one read serves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window as RioWindow

from s2clouds.errors import SceneFormatError
from s2clouds.io import bands as bands_module
from s2clouds.io.bands import ArrayBand, RasterBand, read_bands
from s2clouds.io.grid import Grid, Window
from s2clouds.io.overviews import FileLevels
from s2clouds.io.scenes import read_scene, scene_from_array
from s2clouds.mosaic.warp import WarpedBand, on_grid

TRANSFORM = Affine(10, 0, 500_000, 0, -10, 4_000_000)


def write_tif(
    path: Path, *, count: int = 3, interleave: str = "pixel", pyramid: bool = False
) -> Path:
    """A 64 x 64 uint16 GeoTIFF of ``count`` bands (values 1 + band * 1000 + ramp), with an
    acquisition-date tag, and average overviews at 2 and 4 when ``pyramid``."""
    ramp = np.add.outer(np.arange(64), np.arange(64)).astype(np.uint16)
    profile = {
        "driver": "GTiff",
        "height": 64,
        "width": 64,
        "count": count,
        "dtype": "uint16",
        "crs": "EPSG:32632",
        "transform": TRANSFORM,
        "nodata": 0,
        "interleave": interleave,
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.stack([ramp + 1 + 1000 * b for b in range(count)]))
        ds.update_tags(ACQUISITION_DATE="2021-06-01")
    if pyramid:
        with rasterio.open(path, "r+") as ds:
            ds.build_overviews([2, 4], Resampling.average)
    return path


def test_a_raster_band_says_what_it_reads(tmp_path: Path) -> None:
    path = str(write_tif(tmp_path / "s.tif", pyramid=True))
    red, nir = RasterBand("B04", path, 1), RasterBand("B08", path, 2)
    assert red.files() == (path,)
    assert red.dtype() == "uint16"
    assert red.tags()["ACQUISITION_DATE"] == "2021-06-01"
    assert red.file_band() is red
    assert red.group == nir.group != RasterBand("B04", path, 1, nodata=None).group
    levels = red.levels()
    assert isinstance(levels, FileLevels)
    assert levels.resolution == 10.0
    assert dict(levels.means) == {2: 0, 4: 1}
    assert levels.reads_alone is False  # pixel-interleaved: one band decodes all three


def test_an_array_band_has_no_files_and_no_levels() -> None:
    band = ArrayBand("B04", np.ones((4, 4), np.float32))
    assert (band.files(), band.tags(), band.levels(), band.file_band(), band.group) == (
        (),
        {},
        None,
        None,
        None,
    )
    assert band.dtype() == "float32"


def test_levels_say_which_coarser_reads_are_cheap() -> None:
    levels = FileLevels(10.0, means=((2, 0),), sized=((2, 0), (3, 1)), reads_alone=True)
    assert levels.reads_cheaply_at(10.0)  # the file's own pixels
    assert levels.reads_cheaply_at(20.0) and levels.reads_cheaply_at(40.0)  # 4 = 2 x 2
    assert not levels.reads_cheaply_at(15.0)  # not a whole factor
    assert not levels.reads_cheaply_at(30.0)  # 3 is not a multiple of 2
    assert levels.reads_cheaply_at(30.0, exact=False)  # the level sized like 3 px means


def test_bands_of_one_file_are_read_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = str(write_tif(tmp_path / "a.tif"))
    second = str(write_tif(tmp_path / "b.tif", count=1))
    sources = [
        RasterBand("B02", first, 1),
        RasterBand("B03", first, 2),
        RasterBand("B04", second, 1),
        ArrayBand("B05", np.full((64, 64), 7, np.float32)),
        RasterBand("B08", first, 3),
    ]
    grid = Grid("EPSG:32632", TRANSFORM, 64, 64)
    window = Window(3, 5, 20, 30)
    calls: list[tuple[str, tuple[int, ...]]] = []
    real = bands_module.read_raster_window

    def counting(path: str, indexes: Sequence[int], *args: Any, **kwargs: Any) -> np.ndarray:
        calls.append((path, tuple(indexes)))
        return real(path, indexes, *args, **kwargs)

    monkeypatch.setattr(bands_module, "read_raster_window", counting)
    stack = read_bands(sources, grid, window)
    assert calls == [(first, (1, 2)), (second, (1,)), (first, (3,))]
    assert stack.shape == (5, 20, 30) and stack.dtype == np.float32
    with rasterio.open(first) as ds:
        expected = ds.read(window=window.to_rasterio()).astype(np.float32)
    np.testing.assert_array_equal(stack[[0, 1, 4]], expected)
    assert (stack[3] == 7).all()


def test_a_scene_asks_its_sources(tmp_path: Path) -> None:
    plain = write_tif(tmp_path / "plain.tif", interleave="band")
    pyramid = write_tif(tmp_path / "pyramid.tif", interleave="band", pyramid=True)
    scene = read_scene(pyramid, bands=["B02", "B03", "B04"])
    assert str(pyramid) in scene.input_files()
    assert scene.reads_cheaply_at(20.0) and not scene.reads_cheaply_at(30.0)
    assert not read_scene(plain, bands=["B02", "B03", "B04"]).reads_cheaply_at(20.0)
    array = scene_from_array(np.ones((3, 8, 8), np.float32), ["B02", "B03", "B04"])
    assert array.input_files() == ()
    assert not array.reads_cheaply_at(20.0)  # a band in memory has no coarser level


def test_on_grid_warps_file_bands_and_keeps_arrays_on_their_grid(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "s.tif")
    scene = read_scene(path, bands=["B02", "B03", "B04"])
    warped = on_grid(scene, scene.grid, "nearest")
    assert all(isinstance(s, WarpedBand) for s in warped.sources)
    assert [s.file_band() for s in warped.sources] == list(scene.sources)
    assert warped.sources[0].dtype() == "uint16" and warped.sources[0].levels() is None
    np.testing.assert_array_equal(warped.read(), scene.read())
    array = scene_from_array(np.ones((3, 8, 8), np.float32), ["B02", "B03", "B04"])
    assert on_grid(array, array.grid).sources == array.sources
    with pytest.raises(SceneFormatError, match="in-memory band cannot be warped"):
        on_grid(array, array.grid.at_resolution(20.0))


def test_window_to_rasterio_puts_columns_first() -> None:
    window = Window(row=1, col=2, height=3, width=4)
    assert window.to_rasterio() == RioWindow(col_off=2, row_off=1, width=4, height=3)
    assert window.to_rasterio(scale=2, offset=(0.5, 10)) == RioWindow(14, 2.5, 8, 6)
