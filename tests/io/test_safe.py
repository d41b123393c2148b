"""Reading Sentinel-2 .SAFE products (folder and zip, L1C and L2A) into a Scene."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from s2clouds.bands import L1C_BANDS, L2A_BANDS
from s2clouds.errors import BandError, SceneFormatError
from s2clouds.io.safe import circular_mean_degrees, read_safe
from s2clouds.io.scenes import read_scene
from s2clouds.io.solar import grid_centre_lonlat, parse_timestamp, solar_position

Maker = Callable[[str], ModuleType]


@pytest.fixture
def safe(maker: Maker) -> ModuleType:
    return maker("safe")


def _expected(safe: ModuleType, bands: tuple[str, ...], size_10m: int = 60) -> np.ndarray:
    return np.stack([safe.expected_reflectance(b, size_10m) for b in bands])


def _band_file(product: Path, band: str) -> Path:
    return next(product.glob(f"GRANULE/*/IMG_DATA/**/*_{band}*.jp2"))


@pytest.mark.parametrize("zipped", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("baseline", ["02.09", "04.00"])
@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_reads_the_stored_reflectance(
    safe: ModuleType, tmp_path: Path, level: str, baseline: str, zipped: bool
) -> None:
    path = safe.write_safe(tmp_path, level=level, baseline=baseline, zipped=zipped)
    scene = read_safe(path)
    bands = L1C_BANDS if level == "L1C" else L2A_BANDS
    assert scene.bands == bands
    assert scene.level == level
    assert scene.shape == (60, 60)
    np.testing.assert_allclose(scene.read(), _expected(safe, bands), atol=1e-6)


def test_baseline_offset_comes_from_the_metadata(safe: ModuleType, tmp_path: Path) -> None:
    old = read_safe(safe.write_safe(tmp_path / "old", baseline="02.09"))
    new = read_safe(safe.write_safe(tmp_path / "new", baseline="04.00"))
    assert old.radiometry.baseline == "02.09"
    assert {old.radiometry.offset(b) for b in L1C_BANDS} == {0.0}
    assert new.radiometry.baseline == "04.00"
    assert dict(new.radiometry.offsets) == {b: -1000.0 for b in L1C_BANDS}
    assert new.radiometry.quantification == 10000.0
    assert new.radiometry.kind == "dn"
    raw_new = new.sources[1].read(new.grid, new.grid.full_window())
    raw_old = old.sources[1].read(old.grid, old.grid.full_window())
    np.testing.assert_array_equal(
        raw_new[np.isfinite(raw_new)] - 1000, raw_old[np.isfinite(raw_old)]
    )
    np.testing.assert_allclose(new.read(), old.read(), atol=1e-6)
    new.check_radiometry()


def test_l2a_offsets_use_boa_add_offset(safe: ModuleType, tmp_path: Path) -> None:
    scene = read_safe(safe.write_safe(tmp_path, level="L2A", baseline="04.00"))
    assert dict(scene.radiometry.offsets) == {b: -1000.0 for b in L1C_BANDS}
    assert scene.radiometry.level == "L2A"


def test_angles_from_tile_metadata(safe: ModuleType, tmp_path: Path) -> None:
    scene = read_safe(safe.write_safe(tmp_path))
    assert scene.angles is not None
    assert scene.angles.sun_zenith == pytest.approx(safe.SUN_ZENITH)
    assert scene.angles.sun_azimuth == pytest.approx(safe.SUN_AZIMUTH)
    assert scene.angles.view_zenith == pytest.approx(np.mean(safe.VIEW_ZENITH))
    assert scene.angles.view_azimuth == pytest.approx(np.mean(safe.VIEW_AZIMUTH), abs=0.05)


def test_circular_mean_wraps_around_north() -> None:
    wrapped = (circular_mean_degrees([350.0, 10.0]) + 180.0) % 360.0 - 180.0
    assert wrapped == pytest.approx(0.0, abs=1e-9)
    assert circular_mean_degrees([90.0, 180.0]) == pytest.approx(135.0)


def test_meta_names_product_tile_time_and_extra_layers(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path, level="L2A", spacecraft="S2A")
    scene = read_safe(path)
    assert scene.product_id == safe.product_name("L2A", "04.00", "S2A")
    assert scene.meta["spacecraft"] == "S2A"
    assert scene.meta["tile_id"] == "T32TQM"
    assert scene.meta["sensing_time"] == safe.SENSING_ISO
    assert scene.meta["processing_baseline"] == "04.00"
    assert scene.meta["crs"] == "EPSG:32632"
    assert scene.meta["cloud_cover"] == pytest.approx(safe.CLOUD_COVER)
    extras = scene.meta["extra_layers"]
    assert set(extras) == {"SCL", "AOT", "WVP", "TCI"}
    assert extras["SCL"].endswith("_SCL_20m.jp2")
    assert extras["AOT"].endswith("_AOT_10m.jp2")


def test_l2a_takes_each_band_at_native_resolution(safe: ModuleType, tmp_path: Path) -> None:
    scene = read_safe(safe.write_safe(tmp_path, level="L2A", zipped=True))
    paths = {s.band: s.files()[0] for s in scene.sources}
    assert len(paths) == len(scene.bands)
    assert paths["B02"].endswith("R10m/T32TQM_20220105T103329_B02_10m.jp2")
    assert paths["B05"].endswith("R20m/T32TQM_20220105T103329_B05_20m.jp2")
    assert paths["B01"].endswith("R60m/T32TQM_20220105T103329_B01_60m.jp2")
    assert all(p.startswith("/vsizip/") for p in paths.values())


@pytest.mark.parametrize(("resolution", "size"), [(10, 60), (20, 30), (60, 10)])
def test_resolution_sets_the_grid(
    safe: ModuleType, tmp_path: Path, resolution: int, size: int
) -> None:
    scene = read_safe(safe.write_safe(tmp_path), resolution=resolution)
    assert scene.grid.resolution == resolution
    data = scene.read()
    assert data.shape == (13, size, size)
    step = resolution // 10
    np.testing.assert_allclose(data, _expected(safe, L1C_BANDS)[:, ::step, ::step], atol=1e-6)


def test_nodata_border_is_nan(safe: ModuleType, tmp_path: Path) -> None:
    scene = read_safe(safe.write_safe(tmp_path, nodata_columns_60m=2))
    data = scene.read()
    assert np.isnan(data[:, :, :12]).all()
    assert np.isfinite(data[:, :, 12:]).all()
    assert scene.meta["nodata"] == 0.0


def test_band_missing_from_product_is_absent(safe: ModuleType, tmp_path: Path) -> None:
    scene = read_safe(safe.write_safe(tmp_path, bands=("B02", "B03", "B04", "B08")))
    assert scene.bands == ("B02", "B03", "B04", "B08")
    with pytest.raises(BandError, match="B11"):
        scene.select(["B02", "B11"])


def test_sun_angles_fall_back_to_the_solar_position(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path)
    tile_metadata = next(path.glob("GRANULE/*/MTD_TL.xml"))
    tree = ET.parse(tile_metadata)
    for angles in tree.getroot().iterfind(".//{*}Tile_Angles"):
        angles.remove(next(angles.iterfind("{*}Mean_Sun_Angle")))
    tree.write(tile_metadata)
    scene = read_safe(path)
    when = parse_timestamp(safe.SENSING_ISO)
    assert when is not None and scene.angles is not None
    zenith, azimuth = solar_position(when, *grid_centre_lonlat(scene.grid))
    assert scene.angles.source == f"solar position at {when.isoformat()}"
    assert (scene.angles.sun_zenith, scene.angles.sun_azimuth) == (zenith, azimuth)
    # 5 January, 10:33 UTC, 45 degrees north: a low sun just east of south
    assert 65 < zenith < 80 and 140 < azimuth < 175
    assert scene.angles.view_zenith is None


def test_bands_found_by_name_when_metadata_lists_none(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path)
    metadata = path / "MTD_MSIL1C.xml"
    tree = ET.parse(metadata)
    for granule in tree.getroot().iterfind(".//Granule"):
        for entry in granule.findall("IMAGE_FILE"):
            granule.remove(entry)
    tree.write(metadata)
    scene = read_safe(path)
    assert scene.bands == L1C_BANDS
    np.testing.assert_allclose(scene.read(), _expected(safe, L1C_BANDS), atol=1e-6)


def test_level_must_match_the_product(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path, level="L1C")
    with pytest.raises(SceneFormatError, match="L1C product but level L2A"):
        read_safe(path, level="L2A")
    with pytest.raises(SceneFormatError, match="use 'L1C' or 'L2A'"):
        read_safe(path, level="L3")
    assert read_safe(path, level="l1c").level == "L1C"


def test_missing_metadata_is_refused(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path)
    (path / "MTD_MSIL1C.xml").unlink()
    with pytest.raises(SceneFormatError, match="no MTD_MSIL1C.xml or MTD_MSIL2A.xml"):
        read_safe(path)


def test_damaged_metadata_is_refused(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path)
    tile_metadata = next(path.glob("GRANULE/*/MTD_TL.xml"))
    tile_metadata.write_text("<Level-1C_Tile_ID><General_Info>")
    with pytest.raises(SceneFormatError, match="MTD_TL.xml .*not valid XML"):
        read_safe(path)


def test_missing_band_file_is_refused(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path)
    _band_file(path, "B05").unlink()
    with pytest.raises(SceneFormatError, match=r"B05\.jp2.*are missing"):
        read_safe(path)


def test_trimmed_duplicate_resolutions_do_not_matter(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path, level="L2A")
    for duplicate in path.glob("GRANULE/*/IMG_DATA/R60m/*_B0[2-4]_60m.jp2"):
        duplicate.unlink()
    next(path.glob("GRANULE/*/IMG_DATA/R10m/*_TCI_10m.jp2")).unlink()
    scene = read_safe(path)
    assert scene.bands == L2A_BANDS
    assert "TCI" not in scene.meta["extra_layers"]


def test_corrupt_jp2_is_refused(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path)
    _band_file(path, "B03").write_bytes(b"\x00\x00\x00\x0cjP  garbage")
    with pytest.raises(SceneFormatError, match="B03.jp2.*damaged"):
        read_safe(path)


def test_truncated_jp2_fails_on_read(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path)
    band = _band_file(path, "B04")
    band.write_bytes(band.read_bytes()[:-300])
    scene = read_safe(path)
    with pytest.raises(SceneFormatError, match="B04.jp2"):
        scene.read()


def test_corrupt_zip_is_refused(safe: ModuleType, tmp_path: Path) -> None:
    path = safe.write_safe(tmp_path, zipped=True)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(SceneFormatError, match="not a readable zip"):
        read_safe(path)


def test_zip_without_product_is_refused(tmp_path: Path) -> None:
    archive = Path(shutil.make_archive(str(tmp_path / "S2B_MSIL1C_empty"), "zip", tmp_path))
    with pytest.raises(SceneFormatError, match="no MTD_MSIL1C.xml"):
        read_safe(archive)


def test_read_scene_dispatches_folders_and_zips(safe: ModuleType, tmp_path: Path) -> None:
    folder = safe.write_safe(tmp_path / "a")
    scene = read_scene(folder, bands=["red", "nir"], resolution=20)
    assert scene.bands == ("B04", "B08")
    assert scene.shape == (30, 30)
    archive = safe.write_safe(tmp_path / "b", level="L2A", zipped=True)
    renamed = archive.rename(archive.with_name(archive.stem + ".SAFE.zip"))
    zipped = read_scene(renamed, level="L2A")
    assert zipped.product_id == archive.stem
    assert zipped.bands == L2A_BANDS
