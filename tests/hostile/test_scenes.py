"""Every scene reader on damaged files: a GeoTIFF, a band of a band folder, the metadata,
tile metadata and a band of a .SAFE folder, a .SAFE zip, a STAC item and its band, each cut
in half, emptied or replaced by garbage, give one line and exit 2 from ``predict``; the
input is unchanged and nothing is left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "half": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: b"\x89garbage\x00" * 100,
}


def stac_item(folder: Path, maker) -> Path:
    maker("geotiff").write_band_folder(folder / "bands", RGBN, size=64)
    assets = {b: {"href": f"bands/{b}.tif", "eo:bands": [{"name": b}]} for b in RGBN}
    item = folder / "item.json"
    item.write_text(json.dumps({"type": "Feature", "id": "x", "assets": assets}))
    return item


def build(kind: str, folder: Path, maker) -> tuple[Path, Path]:
    """The input of ``kind`` written in ``folder``: (the path to predict, the file to damage)."""
    geotiff, safe = maker("geotiff"), maker("safe")
    if kind == "geotiff":
        path = geotiff.write_multiband(folder / "s.tif", RGBN)
        return path, path
    if kind == "band folder":
        bands = geotiff.write_band_folder(folder / "f", RGBN)
        return bands, bands / "B08.tif"
    if kind == "SAFE zip":
        archive = safe.write_safe(folder, zipped=True)
        return archive, archive
    if kind.startswith("SAFE"):
        product = safe.write(folder)
        pattern = {"SAFE metadata": "MTD_MSIL1C.xml", "SAFE tile metadata": "GRANULE/*/MTD_TL.xml"}
        return product, next(product.glob(pattern.get(kind, "GRANULE/*/IMG_DATA/*_B08.jp2")))
    item = stac_item(folder, maker)
    return item, item if kind == "STAC item" else folder / "bands" / "B08.tif"


KINDS = ["geotiff", "band folder", "SAFE metadata", "SAFE tile metadata", "SAFE band", "SAFE zip"]


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("kind", [*KINDS, "STAC item", "STAC band"])
def test_damaged_scene_files(
    tmp_path: Path, maker, refuse: Refuse, frozen, kind: str, damage: str
) -> None:
    source, target = build(kind, tmp_path, maker)
    target.write_bytes(DAMAGES[damage](target.read_bytes()))
    check = frozen(tmp_path)
    refuse(["predict", str(source), "-o", str(tmp_path / "m.tif"), "--quiet", "--workers", "0"])
    check()
