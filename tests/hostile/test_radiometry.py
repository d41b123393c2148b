"""Impossible radiometry and angles are refused, not turned into a confident mask: mixed
float/integer band folders, damaged SAFE quantification and offsets, empty or negative
reflectance, impossible or unreadable sun angles, unusable STAC scales."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.errors import RadiometryError, SceneFormatError
from s2clouds.inference.options import PredictOptions, ReadOptions
from s2clouds.inference.predict import predict
from s2clouds.io.scene import SunAngles
from s2clouds.io.scenes import read_scene
from s2clouds.radiometry import Radiometry

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
Frozen = Callable[[Path], Callable[[], None]]


def rewrite(path: Path, pattern: str, replacement: str) -> None:
    """Replace the first match of ``pattern`` in a text file (the fixture's XML)."""
    text = path.read_text()
    new = re.sub(pattern, replacement, text, count=1)
    assert new != text, pattern
    path.write_text(new)


def predict_argv(source: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["predict", str(source), "-o", str(tmp_path / "out" / "mask.tif"), "--quiet", *extra]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def test_a_float_band_among_integer_bands(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, out: Path
) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=64)
    with rasterio.open(folder / "B08.tif") as ds:
        profile, dn = ds.profile | {"dtype": "float32"}, ds.read(1)
    with rasterio.open(folder / "B08.tif", "w", **profile) as ds:
        ds.write((dn / 10000).astype(np.float32), 1)
    check = frozen(tmp_path)
    err = refuse(predict_argv(folder, tmp_path))
    assert "B08.tif" in err and "--scale" in err
    # told that everything is DN, the float band is still caught, band by band
    err = refuse(predict_argv(folder, tmp_path, "--scale", "dn"))
    assert "band B08" in err and "divided by 10000 twice" in err
    check()


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        ("QUANTIFICATION_VALUE", "nan"),
        ("QUANTIFICATION_VALUE", "1e400"),
        ("QUANTIFICATION_VALUE", "0"),
        ("RADIO_ADD_OFFSET", "nan"),
        ("RADIO_ADD_OFFSET", "-1e30"),
    ],
)
def test_damaged_safe_quantification_and_offsets(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, out: Path, tag: str, value: str
) -> None:
    safe = maker("safe").write(tmp_path)
    rewrite(safe / "MTD_MSIL1C.xml", rf"(<{tag}\b[^>]*>)[^<]*<", rf"\g<1>{value}<")
    check = frozen(tmp_path)
    err = refuse(predict_argv(safe, tmp_path))
    assert "MTD_MSIL1C.xml" in err and ("quantification" in err or "offset" in err)
    check()


@pytest.mark.parametrize("value", ["-300", "nan", "200", "abc"])
def test_impossible_sun_zenith_in_safe_tile_metadata(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, out: Path, value: str
) -> None:
    safe = maker("safe").write(tmp_path)
    tile = next(safe.glob("GRANULE/*/MTD_TL.xml"))
    rewrite(tile, r"(<Mean_Sun_Angle>\s*<ZENITH_ANGLE[^>]*>)[^<]*<", rf"\g<1>{value}<")
    check = frozen(tmp_path)
    err = refuse(predict_argv(safe, tmp_path, "--model", "physical"))
    assert "MTD_TL.xml" in err and "ZENITH" in err.upper()
    check()


@pytest.mark.parametrize(
    ("zenith", "message"), [("-300", "outside 0 to 90"), ("abc", "not numbers")]
)
def test_impossible_sun_angle_tags(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, out: Path, zenith: str, message: str
) -> None:
    tif = maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=64)
    with rasterio.open(tif, "r+") as ds:
        ds.update_tags(MEAN_SOLAR_ZENITH_ANGLE=zenith)
    check = frozen(tmp_path)
    err = refuse(predict_argv(tif, tmp_path, "--model", "physical"))
    assert message in err and "scene.tif" in err
    check()


def test_empty_and_negative_reflectance(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, out: Path
) -> None:
    make = maker("geotiff")
    zero = make.write_band_folder(tmp_path / "zero", RGBN, size=64)
    for band in RGBN:
        with rasterio.open(zero / f"{band}.tif", "r+") as ds:
            ds.write(np.zeros((1, 64, 64), np.uint16))
    negative = make.write_multiband(tmp_path / "negative.tif", RGBN, size=64, dtype="float32")
    with rasterio.open(negative, "r+") as ds:
        ds.write(-ds.read())
    check = frozen(tmp_path)
    assert "no valid pixel" in refuse(predict_argv(zero, tmp_path))
    assert "not negative" in refuse(predict_argv(negative, tmp_path))
    check()
    zeros = np.zeros((4, 32, 32), np.float32)
    with pytest.raises(RadiometryError, match="0 everywhere"):
        predict(
            zeros,
            tmp_path / "a.tif",
            PredictOptions(read=ReadOptions(bands=tuple(RGBN)), progress=False),
        )


@pytest.mark.parametrize(
    ("raster", "properties"),
    [
        ({"scale": 0}, {}),
        ({"scale": "abc"}, {}),
        ({"scale": 0.0001, "offset": float("nan")}, {}),
        ({}, {"view:sun_elevation": None, "view:sun_azimuth": 150}),
        ({}, {"view:sun_elevation": 120, "view:sun_azimuth": 150}),
    ],
)
def test_unusable_stac_scales_and_angles(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, out: Path, raster, properties
) -> None:
    maker("geotiff").write_band_folder(tmp_path / "bands", RGBN, size=64)
    assets = {
        b: {"href": f"bands/{b}.tif", "eo:bands": [{"name": b}], "raster:bands": [raster]}
        for b in RGBN
    }
    item = tmp_path / "item.json"
    document = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "assets": assets}
    item.write_text(json.dumps(document | {"properties": properties}))
    check = frozen(tmp_path)
    err = refuse(predict_argv(item, tmp_path))
    assert "item.json" in err
    check()


def test_radiometry_and_angles_bound_their_fields() -> None:
    for bad in (float("nan"), float("inf"), 0.0, -1.0, 1e9):
        with pytest.raises(RadiometryError, match="quantification"):
            Radiometry(quantification=bad)
    for offset in (float("nan"), -1e30):
        with pytest.raises(RadiometryError, match="offset"):
            Radiometry(offsets={"B02": offset})
    Radiometry(offsets={"B02": -1000.0})
    with pytest.raises(SceneFormatError, match="sun zenith"):
        SunAngles(-300.0, 150.0)
    with pytest.raises(SceneFormatError, match="sun azimuth"):
        SunAngles(30.0, float("nan"))


def test_real_looking_scenes_still_pass(tmp_path: Path, maker) -> None:
    """Dark but valid bands (water in L2A with offsets) and partly empty scenes are fine."""
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=64)
    with rasterio.open(folder / "B08.tif", "r+") as ds:
        data = ds.read(1)
        data[:, :32] = 0  # half the scene outside the swath
        ds.write(data, 1)
    read_scene(folder).check_radiometry()
    predict(folder, tmp_path / "mask.tif", PredictOptions(progress=False))


def test_a_near_zero_cirrus_band_is_normal() -> None:
    from s2clouds.radiometry import check_bands

    sample = np.full((2, 8, 8), 0.05, np.float32)
    sample[1] = 0.00005  # B10 under a clear sky
    check_bands(sample, ["B02", "B10"])
    sample[1] = 0.0
    check_bands(sample, ["B02", "B10"])
    with pytest.raises(RadiometryError, match="band B03"):
        check_bands(sample, ["B02", "B03"])


REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"


def test_surface_reflectance_declared_l1c_is_refused(
    tmp_path: Path, refuse: Refuse, frozen: Frozen, out: Path
) -> None:
    """A real L2A chip (On Cloud N) declared L1C: its blue is darker than any top-of-
    atmosphere blue, so the level is refused rather than guessed."""
    chip = Path(__file__).resolve().parents[2] / "examples" / "oncloudn_chip1"
    check = frozen(tmp_path)
    err = refuse(predict_argv(chip, tmp_path, "--level", "L1C"))
    assert "declared L1C" in err and "L2A" in err and "B02" in err
    check()


@pytest.mark.skipif(not (REAL / "sen12mscr").is_dir(), reason="needs ../shared/data/real")
def test_real_top_of_atmosphere_passes_the_level_check() -> None:
    from s2clouds.radiometry import check_level
    from s2clouds.train.surfaces import read_geotiff_dn

    for path in sorted((REAL / "sen12mscr" / "timeseries").rglob("*.tif"))[:10]:
        image, bands = read_geotiff_dn(path, offset=0.0)
        check_level(image, bands, "L1C")  # dark winter fields and water: still above the floor
    image, bands = read_geotiff_dn(REAL / "s2_100k" / "patch_25630.tif")
    check_level(image, bands, "L2A")  # other levels are not judged
