"""Loose parsing is gone: malformed lists, CSVs, STAC items, archives, options and band
grids give one-line errors (exit 2) instead of tracebacks or silent misreadings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
Frozen = Callable[[Path], Callable[[], None]]


def test_a_non_utf8_input_list(tmp_path: Path, refuse: Refuse, frozen: Frozen) -> None:
    listing = tmp_path / "inputs.txt"
    listing.write_bytes(b"scene\xff\xfe.tif\n")
    check = frozen(tmp_path)
    err = refuse(["predict", f"@{listing}", "-o", str(tmp_path / "out")])
    assert "inputs.txt" in err and "UTF-8" in err
    check()


def test_stac_raster_bands_given_as_an_object(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen
) -> None:
    maker("geotiff").write_band_folder(tmp_path / "bands", RGBN, size=64)
    assets = {
        b: {"href": f"bands/{b}.tif", "eo:bands": [{"name": b}], "raster:bands": {"scale": 1}}
        for b in RGBN
    }
    item = tmp_path / "item.json"
    item.write_text(json.dumps({"type": "Feature", "id": "x", "assets": assets}))
    check = frozen(tmp_path)
    err = refuse(["predict", str(item), "-o", str(tmp_path / "m.tif")])
    assert "raster:bands must be a list" in err
    check()


def test_a_truncated_7z_archive(tmp_path: Path, maker, refuse: Refuse, frozen: Frozen) -> None:
    pytest.importorskip("py7zr")
    maker("temporal").write(tmp_path / "full", archive=True)
    archive = sorted((tmp_path / "full").glob("*.7z"))[0]
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / archive.name).write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    check = frozen(tmp_path)
    err = refuse(["datasets", "info", str(cut), "--kind", "temporal"])
    assert archive.name in err and "truncated or damaged" in err
    check()


CMC_DAMAGE = {
    "not UTF-8": (lambda text: text.encode("utf-16"), "UTF-8"),
    "short row": (lambda text: text.rstrip("\n").rsplit(",", 2)[0] + "\n", "fewer values"),
    "tag 2": (lambda text: text.rstrip("\n")[:-1] + "2\n", "must be 0 or 1"),
    "duplicate": (lambda text: text + text.splitlines()[-1] + "\n", "twice"),
    "traversal": (lambda text: text.replace(",S2A_", ",../S2A_", 1), "never paths"),
}


@pytest.mark.parametrize("damage", list(CMC_DAMAGE))
def test_damaged_cloud_mask_catalogue_csv(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, damage: str
) -> None:
    root = maker("cmc").write(tmp_path / "cmc")
    csv_path = root / "classification_tags.csv"
    change, message = CMC_DAMAGE[damage]
    changed = change(csv_path.read_text())
    if isinstance(changed, bytes):
        csv_path.write_bytes(changed)
    else:
        csv_path.write_text(changed)
    check = frozen(tmp_path)
    err = refuse(["datasets", "info", str(root), "--kind", "cmc"])
    assert message in err and "classification_tags.csv" in err
    check()


@pytest.mark.parametrize("option", ["canonical=no", "crop=maybe", "canonical=2"])
def test_reader_options_of_the_wrong_type(
    tmp_path: Path, maker, refuse: Refuse, option: str
) -> None:
    root = maker("cloudsen12").write(tmp_path / "cloudsen12")
    err = refuse(["datasets", "info", str(root), "--kind", "cloudsen12", "-O", option])
    assert option.partition("=")[0] in err and "true or false" in err


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_benchmark_limits_below_one(tmp_path: Path, maker, refuse: Refuse, limit: str) -> None:
    root = maker("cloudsen12").write(tmp_path / "cloudsen12")
    err = refuse(["benchmark", str(root), "--models", "physical", "--limit", limit])
    assert "--limit" in err


@pytest.mark.parametrize(("size", "shift"), [(63, 0), (64, 10), (65, 0)])
def test_a_band_one_pixel_off_is_refused_not_stretched(
    tmp_path: Path, maker, refuse: Refuse, frozen: Frozen, size: int, shift: int
) -> None:
    folder = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=64)
    with rasterio.open(folder / "B08.tif") as ds:
        profile = ds.profile
    x, y = profile["transform"].c + shift, profile["transform"].f
    profile.update(width=size, height=size, transform=Affine(10, 0, x, 0, -10, y))
    with rasterio.open(folder / "B08.tif", "w", **profile) as ds:
        ds.write(np.full((1, size, size), 3000, np.uint16))
    check = frozen(tmp_path)
    err = refuse(["predict", str(folder), "-o", str(tmp_path / "m.tif")])
    assert "B08.tif covers another area" in err
    check()


def test_coarse_bands_of_odd_sized_tiles_still_fit(tmp_path: Path, maker) -> None:
    """511 px at 10 m and 256 px at 20 m (the last coarse pixel half past the edge) are one
    tile, and so are 85 px at 60 m (the last pixels short of the edge); the 60 m output
    grid covers the whole tile (86 px, the last one partly past the edge)."""
    from s2clouds.io.scenes import read_scene

    folder = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=511)
    with rasterio.open(folder / "B02.tif") as ds:
        profile = ds.profile
    corner = profile["transform"]
    for band, resolution, size in (("B11", 20, 256), ("B01", 60, 85)):
        transform = Affine(resolution, 0, corner.c, 0, -resolution, corner.f)
        coarse = profile | {"width": size, "height": size, "transform": transform}
        with rasterio.open(folder / f"{band}.tif", "w", **coarse) as ds:
            ds.write(np.full((1, size, size), 1500, np.uint16))
    scene = read_scene(folder)
    assert scene.grid.shape == (511, 511) and "B11" in scene.bands
    assert read_scene(folder, resolution=60).read().shape == (6, 86, 86)


def test_non_utf8_spec_seasons_and_score_files(tmp_path: Path) -> None:
    import shutil

    from s2clouds.benchmark.confusion import BenchmarkError
    from s2clouds.benchmark.report import read_csv
    from s2clouds.datasets.sen12ms import read_seasons_csv
    from s2clouds.errors import DatasetError, ModelError
    from s2clouds.models.builtin import WEIGHTS_DIR
    from s2clouds.models.weights import read_sidecar

    spec = WEIGHTS_DIR / "s2clouds-tiny-rgbn.json"
    shutil.copyfile(spec.with_suffix(".onnx"), tmp_path / "m.onnx")
    (tmp_path / "m.json").write_bytes(spec.read_text().encode("utf-16"))
    with pytest.raises(ModelError, match="not UTF-8"):
        read_sidecar(tmp_path / "m.onnx")
    seasons = tmp_path / "seasons.csv"
    seasons.write_bytes("roi,scene,season\nROIs1158_spring,1,fall\n".encode("utf-16"))
    with pytest.raises(DatasetError, match="seasons table"):
        read_seasons_csv(seasons)
    scores = tmp_path / "per_image.csv"
    scores.write_bytes(b"image,boa\n\xff\xfe,1\n")
    with pytest.raises(BenchmarkError, match="UTF-8"):
        read_csv(scores)
