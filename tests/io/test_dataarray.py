"""xarray.DataArray in, mask DataArray out (odc-stac / stackstac / rioxarray inputs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import s2clouds
from s2clouds.cli.main import cli
from s2clouds.errors import SceneFormatError
from s2clouds.inference.options import PredictOptions, RunOptions

xr = pytest.importorskip("xarray")
rioxarray = pytest.importorskip("rioxarray")

PHYSICAL = PredictOptions(run=RunOptions(model="physical"))


def _real_pair(real_data: Path) -> Path:
    return sorted((real_data / "sen12mscr" / "pairs").iterdir())[0] / "cloudy.tif"


def test_rioxarray_dataarray_gives_the_mask_of_the_file(real_data: Path, tmp_path: Path) -> None:
    path = _real_pair(real_data)
    da = rioxarray.open_rasterio(path)
    da = da.assign_coords(band=list(da.attrs["long_name"]))
    mask = s2clouds.predict(da, options=PHYSICAL)
    assert isinstance(mask, xr.DataArray) and mask.name == "mask" and mask.dims == ("y", "x")
    np.testing.assert_array_equal(mask.x, da.x)
    np.testing.assert_array_equal(mask.y, da.y)
    assert mask.rio.crs == da.rio.crs and mask.dtype == np.uint8
    assert mask.attrs["model"] == "physical" and 255 in mask.attrs["flag_values"]
    from_file = s2clouds.predict(path, tmp_path / "m.tif", PHYSICAL)
    with rasterio.open(from_file.output) as ds:
        np.testing.assert_array_equal(mask.values, ds.read(1))
        assert ds.transform == da.rio.transform()


def test_stackstac_style_dataarray_with_time_and_attrs_crs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(300, 3000, (1, 4, 24, 20)).astype(np.float64) / 10000
    values[0, :, :6, :6] = 0.6  # a bright block
    x = 500005.0 + 10 * np.arange(20)
    y = 4999995.0 - 10 * np.arange(24)
    da = xr.DataArray(
        values,
        dims=("time", "band", "y", "x"),
        coords={
            "time": [np.datetime64("2021-06-01")],
            "band": ["blue", "green", "red", "nir"],
            "x": x,
            "y": y,
        },
        attrs={"crs": "epsg:32633"},
    )
    scene = s2clouds.read_scene(da)
    assert scene.bands == ("B02", "B03", "B04", "B08") and scene.grid.shape == (24, 20)
    assert scene.grid.transform.c == 500000.0 and scene.grid.transform.f == 5000000.0
    assert scene.grid.crs.to_epsg() == 32633
    np.testing.assert_allclose(scene.read(), values[0].astype(np.float32))
    out = tmp_path / "mask.tif"
    mask = s2clouds.predict(da, out, PHYSICAL)
    assert mask.dims == ("y", "x") and "time" in mask.coords and mask.attrs["crs"] == "epsg:32633"
    assert out.is_file() and mask.attrs["path"] == str(out)
    assert set(np.unique(mask.values)) <= {0, 1, 2, 3, 255}


def test_dataarray_without_crs_or_band_names_is_one_clear_error(tmp_path: Path) -> None:
    da = xr.DataArray(
        np.zeros((4, 8, 8), np.float32),
        dims=("band", "y", "x"),
        coords={"band": ["B02", "B03", "B04", "B08"], "x": np.arange(8.0), "y": -np.arange(8.0)},
    )
    with pytest.raises(SceneFormatError, match="has no CRS") as caught:
        s2clouds.predict(da, tmp_path / "mask.tif", PHYSICAL)
    assert "\n" not in str(caught.value) and not list(tmp_path.iterdir())  # nothing written
    with pytest.raises(SceneFormatError, match="give one: da.isel"):
        s2clouds.read_scene(xr.concat([da, da], "time").rio.write_crs("EPSG:32633"))
    with pytest.raises(SceneFormatError, match="no band dimension"):
        s2clouds.read_scene(da.rename(band="wavelength"))
    south_up = da.assign_coords(y=np.arange(8.0)).rio.write_crs("EPSG:32633")
    with pytest.raises(SceneFormatError, match="south-up"):
        s2clouds.read_scene(south_up)


def test_geographic_pixel_size_is_printed_in_degrees_with_metres(
    real_data: Path, tmp_path: Path
) -> None:
    series = sorted((real_data / "sen12mscr" / "timeseries").iterdir())[0]
    first = sorted(series.glob("*.tif"))[0]
    result = CliRunner().invoke(
        cli,
        ["predict", str(first), "-o", str(tmp_path / "m.tif"), "--model", "physical"],
        standalone_mode=False,
        terminal_width=200,
    )
    assert result.exception is None, result.output
    assert re.search(
        r"px at 0\.000\d+ deg \(about \d+(\.\d+)? m\), model physical", result.output
    ), result.output


def test_importing_s2clouds_io_does_not_import_xarray() -> None:
    code = "import s2clouds.io.scenes, sys; print('xarray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
