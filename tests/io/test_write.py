from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2clouds.errors import OutputError
from s2clouds.io.grid import Grid
from s2clouds.io.write import mask_writer, write_mask

GRID = Grid("EPSG:32632", Affine(10, 0, 600000, 0, -10, 5000000), 1100, 1300)


def test_cog_with_overviews_colours_and_names(tmp_path: Path) -> None:
    mask = (np.arange(1100 * 1300).reshape(1100, 1300) // 1000 % 4).astype(np.uint8)
    mask[:5] = 255
    out = write_mask(tmp_path / "m.tif", mask, GRID)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32632 and ds.transform == GRID.transform
        assert ds.nodata == 255 and ds.block_shapes[0] == (512, 512)
        assert ds.overviews(1)  # internal overviews
        assert ds.tags(1)["CLASS_3"] == "cloud shadow"
        assert ds.colormap(1)[1][:3] == (255, 255, 255)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_array_equal(ds.read(1), mask)
        overview = ds.read(1, out_shape=(1100 // 4, 1300 // 4))
        assert set(np.unique(overview)) <= {0, 1, 2, 3, 255}  # mode keeps class values


def test_crash_leaves_nothing_at_destination(tmp_path: Path) -> None:
    target = tmp_path / "m.tif"
    with pytest.raises(KeyboardInterrupt), mask_writer(target, GRID) as writer:
        writer.write(GRID.full_window(), np.zeros(GRID.shape, np.uint8))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destinations(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_mask(tmp_path / "nope" / "m.tif", np.zeros(GRID.shape, np.uint8), GRID)
    (tmp_path / "m.tif").write_text("old")
    with pytest.raises(OutputError, match="overwrite=True"):
        write_mask(tmp_path / "m.tif", np.zeros(GRID.shape, np.uint8), GRID, overwrite=False)


def test_windows_in_any_order_and_nothing_appears_after_an_error(tmp_path: Path) -> None:
    from s2clouds.io.write import probability_writer

    grid = Grid("EPSG:32632", Affine(10, 0, 600000, 0, -10, 5000000), 96, 80)
    windows = list(grid.windows(32))
    probs = np.arange(4 * 96 * 80, dtype=np.uint32).reshape(4, 96, 80) % 101
    with probability_writer(tmp_path / "p.tif", grid) as writer:
        for window in reversed(windows):  # engines deliver windows in any order
            rows, cols = window.within(grid.full_window())
            writer.write(window, probs[:, rows, cols].astype(np.uint8))
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.count == 4 and ds.tags()["UNITS"] == "percent" and ds.nodata == 255
        np.testing.assert_array_equal(ds.read(), probs)
    with pytest.raises(RuntimeError), mask_writer(tmp_path / "m.tif", grid) as writer:
        writer.write(windows[0], np.zeros((32, 32), np.uint8))
        raise RuntimeError("a window failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tif"]  # no mask, no stage files


def test_an_existing_output_is_kept_without_overwrite(tmp_path: Path) -> None:
    grid = Grid("EPSG:32632", Affine(10, 0, 600000, 0, -10, 5000000), 16, 16)
    first = write_mask(tmp_path / "m.tif", np.zeros((16, 16), np.uint8), grid)
    with pytest.raises(OutputError):
        write_mask(first, np.ones((16, 16), np.uint8), grid, overwrite=False)
    with rasterio.open(first) as ds:
        assert ds.read(1).max() == 0
    write_mask(first, np.ones((16, 16), np.uint8), grid)  # overwrite is the default
    with rasterio.open(first) as ds:
        assert ds.read(1).min() == 1
