from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.errors import BandError, CRSMismatchError, SceneFormatError
from s2clouds.io.scenes import read_scene

RGBN = ["B02", "B03", "B04", "B08"]


def test_band_folder_with_mixed_resolutions(tmp_path: Path, maker) -> None:
    folder = maker("geotiff").write_band_folder(
        tmp_path / "scene", RGBN + ["B11"], size=64, coarse={"B11": 20}
    )
    scene = read_scene(folder)
    assert scene.bands == ("B02", "B03", "B04", "B08", "B11")
    assert scene.grid.shape == (64, 64) and scene.grid.resolution == 10
    image = scene.read()
    assert image.shape == (5, 64, 64) and image.dtype == np.float32
    assert 0.0 < float(np.nanmedian(image[0])) < 0.1  # DN were divided by 10000
    at20 = read_scene(folder, resolution=20)
    assert at20.read().shape == (5, 32, 32)
    np.testing.assert_allclose(at20.read()[4], image[4, ::2, ::2], atol=1e-4)  # native 20 m band


def test_windowed_read_equals_full_read(tmp_path: Path, maker) -> None:
    from s2clouds.io.grid import Window

    scene = read_scene(maker("geotiff").write_band_folder(tmp_path / "s", RGBN, size=64))
    full = scene.read()
    np.testing.assert_array_equal(scene.read(Window(10, 20, 16, 30)), full[:, 10:26, 20:50])


def test_multiband_geotiff_names_and_angles(tmp_path: Path, maker) -> None:
    path = maker("geotiff").write_multiband(tmp_path / "s.tif", RGBN)
    scene = read_scene(path)
    assert scene.bands == tuple(RGBN)
    assert scene.angles is not None and scene.angles.sun_azimuth == 150.0
    unnamed = maker("geotiff").write_multiband(tmp_path / "u.tif", RGBN, named=False)
    with pytest.raises(BandError, match="give them with bands="):
        read_scene(unnamed)
    assert read_scene(unnamed, bands=["blue", "green", "red", "nir"]).bands == tuple(RGBN)
    with pytest.raises(BandError, match="has 4 bands but 3"):
        read_scene(unnamed, bands=["B02", "B03", "B04"])


def test_array_input() -> None:
    arr = np.full((4, 8, 8), 0.1, np.float32)
    scene = read_scene(arr, bands=RGBN)
    assert scene.read().shape == (4, 8, 8)
    with pytest.raises(BandError, match="array has 8 bands"):
        read_scene(np.zeros((8, 8, 4), np.float32), bands=RGBN)
    with pytest.raises(BandError, match="needs its band names"):
        read_scene(arr)


def test_crs_mismatch_and_bad_files(tmp_path: Path, maker) -> None:
    make = maker("geotiff")
    folder = make.write_band_folder(tmp_path / "a", ["B02", "B03"], size=32)
    make.write_band_folder(tmp_path / "b", ["B04"], size=32, crs="EPSG:32633")
    (tmp_path / "b" / "B04.tif").rename(folder / "B04.tif")
    with pytest.raises(CRSMismatchError, match="reproject"):
        read_scene(folder)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00garbage")
    with pytest.raises(SceneFormatError, match="damaged"):
        read_scene(corrupt, bands=RGBN)
    with pytest.raises(SceneFormatError, match="unknown input format"):
        notes = tmp_path / "notes.txt"
        notes.write_text("not a raster")
        read_scene(notes)
    with pytest.raises(SceneFormatError, match="not found"):
        read_scene(tmp_path / "missing.tif")


def test_real_chip_reads_with_solar_angles(real_data: Path) -> None:
    scene = read_scene(real_data / "oncloudn_chip1")
    assert scene.bands == tuple(RGBN)
    assert scene.angles is not None and 0 < scene.angles.sun_zenith < 60
    with rasterio.open(real_data / "oncloudn_chip1" / "B02.tif") as ds:
        raw = ds.read(1)
    np.testing.assert_allclose(scene.read()[0], raw / 10000.0, rtol=1e-6)


def test_coarser_reads_ignore_nodata_at_swath_edges(tmp_path: Path, maker) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "s", ["B02"], size=64)
    with rasterio.open(folder / "B02.tif", "r+") as ds:
        data = ds.read(1)
        data[:, :3] = 0  # no data: two whole 20 m columns and half of the next
        ds.write(data, 1)
    image = read_scene(folder, resolution=20).read()[0]
    assert np.isnan(image[:, 0]).all()
    np.testing.assert_allclose(
        image[:, 1], data[:, 3].reshape(32, 2).mean(axis=1) / 10000, rtol=1e-5
    )


def test_bands_of_one_file_read_together_equal_band_by_band(tmp_path: Path, maker) -> None:
    from s2clouds.io.grid import Window

    scene = read_scene(maker("geotiff").write_multiband(tmp_path / "s.tif", RGBN), resolution=20)
    window = Window(3, 5, 20, 17)
    together = scene.read(window)
    one_by_one = np.stack([s.read(scene.grid, window) for s in scene.sources]) / 10000
    np.testing.assert_allclose(together, one_by_one, rtol=1e-6)


def test_resolution_is_the_output_grid_and_arrays_declare_their_pixel_size(
    tmp_path: Path, maker
) -> None:
    image = np.full((4, 8, 8), 0.1, dtype=np.float32)
    assert read_scene(image, bands=RGBN).grid.resolution == 10
    assert read_scene(image, bands=RGBN, pixel_size=20).grid.resolution == 20
    assert read_scene(image, bands=RGBN, pixel_size=20, resolution=20).grid.resolution == 20
    with pytest.raises(SceneFormatError, match="not resampled"):
        read_scene(image, bands=RGBN, resolution=20)  # would relabel 10 m pixels as 20 m
    tif = maker("geotiff").write_multiband(tmp_path / "s.tif", RGBN, size=32)
    with pytest.raises(SceneFormatError, match="pixel_size is for array inputs"):
        read_scene(tif, pixel_size=20)


def test_each_format_is_an_opener_and_the_error_lists_them_all(tmp_path: Path, maker) -> None:
    from s2clouds.io.scenes import OPENERS

    make = maker("geotiff")
    folder = make.write_band_folder(tmp_path / "bands", ["B02", "B03"], size=16)
    tif = next(folder.iterdir())
    item = tmp_path / "item.json"
    item.write_text("{}")
    safe = tmp_path / "S2A_MSIL1C_X.SAFE"
    safe.mkdir()
    array = np.zeros((2, 4, 4), np.float32)
    claims = {
        name: [s for s in (array, item, safe, folder, tif) if OPENERS[name].guess_can_open(s)]
        for name in OPENERS.names()
        if name != "dataarray"
    }
    assert claims == {
        "array": [array],
        "stac": [item],
        "safe": [safe],
        "band-folder": [safe, folder],
        "geotiff": [tif],
    }  # a .SAFE folder is a folder too: the SAFE opener is asked first
    assert not any(o.guess_can_open(tmp_path / "missing.tif") for o in OPENERS.values())
    notes = tmp_path / "notes.txt"
    notes.write_text("not a raster")
    with pytest.raises(SceneFormatError) as info:
        read_scene(notes)
    for words in ("STAC item", "NumPy array", "DataArray", ".SAFE", "GeoTIFF", "band files"):
        assert words in str(info.value)
