import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2clouds.errors import SceneFormatError
from s2clouds.io.scenes import read_scene
from s2clouds.io.stac import identify_band, looks_like_stac_item, read_stac_item

BANDS = ["B02", "B03", "B04", "B08", "B8A", "B11"]
#: earth-search v1 style: common-name keys, wavelengths in micrometres, scale and offset
ASSETS = {
    "blue": ("B02.tif", 0.49),
    "green": ("B03.tif", 0.56),
    "red": ("B04.tif", 0.665),
    "nir": ("B08.tif", 0.842),
    "nir08": ("B8A.tif", 0.865),  # the narrow NIR, not B08, whatever the aliases say
    "swir16": ("B11.tif", 1.61),
}


def _asset(href: str, name: str, wavelength: float) -> dict[str, Any]:
    return {
        "href": href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data", "reflectance"],
        "eo:bands": [{"name": name, "common_name": name, "center_wavelength": wavelength}],
        "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}],
    }


def write_item(tmp_path: Path, maker, **changes: Any) -> Path:
    """A local STAC item beside a folder of band files (relative hrefs), plus assets to ignore."""
    maker("geotiff").write_band_folder(
        tmp_path / "bands", BANDS, size=64, coarse={"B8A": 20, "B11": 20}
    )
    assets = {k: _asset(f"bands/{f}", k, w) for k, (f, w) in ASSETS.items()}
    assets["rededge1"] = _asset("https://example.com/B05.tif", "rededge1", 0.704)
    assets["visual"] = {"href": "bands/B04.tif", "roles": ["visual"], "type": "image/tiff"}
    assets["thumbnail"] = {"href": "https://example.com/t.jpg", "roles": ["thumbnail"]}
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "S2B_32TQM_20220615_0_L2A",
        "properties": {
            "s2:product_type": "S2MSI2A",
            "s2:processing_baseline": "04.00",
            "view:sun_elevation": 60.0,
            "view:sun_azimuth": 150.0,
        },
        "assets": assets,
    }
    item.update(changes)
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    return path


def test_item_becomes_a_lazy_scene_of_its_local_bands(tmp_path: Path, maker) -> None:
    path = write_item(tmp_path, maker)
    assert looks_like_stac_item(path) and not looks_like_stac_item(tmp_path / "bands")
    scene = read_stac_item(path)
    assert scene.bands == tuple(BANDS)
    assert scene.product_id == "S2B_32TQM_20220615_0_L2A" and scene.level == "L2A"
    assert scene.meta["remote_bands"] == ["B05"]
    assert scene.grid.shape == (64, 64) and scene.grid.resolution == 10
    assert scene.angles is not None and scene.angles.sun_zenith == pytest.approx(30.0)
    assert scene.angles.sun_azimuth == 150.0
    # raster:bands scale 1e-4 and offset -0.1 -> reflectance = DN / 10000 - 0.1
    assert scene.radiometry.quantification == pytest.approx(10000)
    assert scene.radiometry.offset("B02") == pytest.approx(-1000)
    folder = read_scene(tmp_path / "bands")  # the same files, read without an offset
    np.testing.assert_allclose(scene.read(), folder.read() - 0.1, atol=1e-6)
    assert read_stac_item(path, resolution=20).grid.shape == (32, 32)
    assert read_stac_item(path, bands=["red", "nir"]).bands == ("B04", "B08")
    opened = read_scene(path, bands=["red", "nir"], resolution=20)  # the one opener
    assert opened.bands == ("B04", "B08") and opened.grid.shape == (32, 32)


def test_baseline_and_absolute_hrefs_without_raster_extension(tmp_path: Path, maker) -> None:
    path = write_item(tmp_path, maker)
    item = json.loads(path.read_text())
    for key, asset in item["assets"].items():
        asset.pop("raster:bands", None)
        if key in ("blue", "green"):
            asset["href"] = (tmp_path / asset["href"]).resolve().as_uri()  # file://
        elif not asset["href"].startswith("http"):
            asset["href"] = str((tmp_path / asset["href"]).resolve())
    path.write_text(json.dumps(item))
    scene = read_stac_item(path)
    assert scene.bands == tuple(BANDS)
    assert scene.radiometry.offset("B04") == -1000 and scene.radiometry.baseline == "04.00"


def test_band_identification_prefers_names_then_wavelength() -> None:
    assert identify_band("B8A", {"name": "B8A", "common_name": "nir08"}) == "B8A"
    assert identify_band("nir08", {"center_wavelength": 0.865}) == "B8A"
    assert identify_band("nir", {"center_wavelength": 0.842}) == "B08"
    assert identify_band("swir16", {}) == "B11"
    assert identify_band("scl", {"name": "scl"}) is None  # not a spectral band
    assert identify_band("lwir", {"center_wavelength": 11.0}) is None


def test_clear_errors(tmp_path: Path, maker, monkeypatch) -> None:
    path = write_item(tmp_path, maker, type="FeatureCollection")
    with pytest.raises(SceneFormatError, match="not a STAC item"):
        read_stac_item(path)
    path = write_item(tmp_path, maker, properties={"s2:product_type": "S2MSI1C"})
    with pytest.raises(SceneFormatError, match="L1C item but level L2A"):
        read_stac_item(path, level="l2a")
    path = write_item(tmp_path, maker)
    (tmp_path / "bands" / "B03.tif").unlink()
    with pytest.raises(SceneFormatError, match="does not exist; download the asset"):
        read_stac_item(path)
    # an item without local band files is read remotely (tests/io/test_remote.py); a closed
    # loopback port fails at once with the remote file named
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    remote = {"blue": _asset("http://127.0.0.1:9/B02.tif", "blue", 0.49)}
    with pytest.raises(SceneFormatError, match=r"cannot read remote file http://127.0.0.1:9/B02"):
        read_stac_item(write_item(tmp_path, maker, assets=remote))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SceneFormatError, match="cannot read STAC item"):
        read_stac_item(bad)
