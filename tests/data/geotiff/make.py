"""Write tiny GeoTIFF scenes: band folders (B02.tif, ...) and multi-band files, like real exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

CRS = "EPSG:32632"
ORIGIN = (600000.0, 5000040.0)


def reflectance_stack(bands: list[str], size: int, seed: int = 0) -> np.ndarray:
    """(C, size, size) float32 reflectance: vegetation with a bright cloud block and a dark patch."""
    rng = np.random.default_rng(seed)
    base = {
        "B01": 0.05,
        "B02": 0.04,
        "B03": 0.07,
        "B04": 0.05,
        "B05": 0.1,
        "B06": 0.25,
        "B07": 0.3,
        "B08": 0.32,
        "B8A": 0.33,
        "B09": 0.1,
        "B10": 0.002,
        "B11": 0.18,
        "B12": 0.09,
    }
    stack = np.stack([np.full((size, size), base[b], np.float32) for b in bands])
    stack += rng.normal(0, 0.005, stack.shape).astype(np.float32)
    q = size // 4
    stack[:, q : 2 * q, q : 2 * q] = 0.6  # cloud: bright and flat
    return np.clip(stack, 0.0001, 1.0)


def write_band_folder(
    folder: Path,
    bands: list[str],
    size: int = 64,
    resolution: float = 10.0,
    coarse: dict[str, float] | None = None,
    crs: str = CRS,
) -> Path:
    """One uint16 DN GeoTIFF per band, named ``<band>.tif``; ``coarse`` gives other resolutions."""
    folder.mkdir(parents=True, exist_ok=True)
    stack = reflectance_stack(bands, size)
    for band, layer in zip(bands, stack, strict=True):
        res = (coarse or {}).get(band, resolution)
        factor = int(res // resolution)
        data = (
            layer.reshape(size // factor, factor, size // factor, factor).mean(axis=(1, 3))
            if factor > 1
            else layer
        )
        dn = np.round(data * 10000).astype(np.uint16)
        profile = dict(
            driver="GTiff",
            height=dn.shape[0],
            width=dn.shape[1],
            count=1,
            dtype="uint16",
            crs=crs,
            transform=Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1]),
            nodata=0,
        )
        with rasterio.open(folder / f"{band}.tif", "w", **profile) as ds:
            ds.write(dn, 1)
    return folder


def write_multiband(
    path: Path,
    bands: list[str],
    size: int = 64,
    resolution: float = 10.0,
    named: bool = True,
    dtype: str = "uint16",
) -> Path:
    """A multi-band GeoTIFF; band descriptions hold the band names when ``named``."""
    stack = reflectance_stack(bands, size)
    data = np.round(stack * 10000).astype(dtype) if dtype != "float32" else stack
    profile = dict(
        driver="GTiff",
        height=size,
        width=size,
        count=len(bands),
        dtype=dtype,
        crs=CRS,
        transform=Affine(resolution, 0, ORIGIN[0], 0, -resolution, ORIGIN[1]),
        nodata=0,
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        if named:
            for i, b in enumerate(bands, start=1):
                ds.set_band_description(i, b)
        ds.update_tags(MEAN_SOLAR_ZENITH_ANGLE="30.0", MEAN_SOLAR_AZIMUTH_ANGLE="150.0")
    return path
