"""Synthetic acquisitions for composite tests: small uint16 GeoTIFFs written in tmp_path.

Clear pixels are dark vegetation (blue about 400 DN); clouds are bright (every band 7000+).
A cheap deterministic scorer, ``test-blue`` (quality falls from 1 to 0 as blue goes from 0.1
to 0.2 reflectance), stands in for a masker so that unit tests stay fast; the default path
(a shipped model and the ``probability`` scorer) is tested once in test_composite.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from affine import Affine

from s2clouds.mosaic.quality import register_scorer

BANDS = ("B02", "B03", "B04", "B08")
SIZE = 40
ORIGIN = (500_000.0, 5_000_000.0)
CLOUD_DN = 7000
#: blue DN below which the test scorer calls a pixel clear (quality >= 0.5)
CLEAR_BLUE_DN = 1500


def blue_score(
    image: np.ndarray, probs: Any, *, bands: Sequence[str], pixel_size: float
) -> np.ndarray:
    blue = np.nan_to_num(image[list(bands).index("B02")], nan=1.0)
    return np.clip(1.0 - (blue - 0.1) / 0.1, 0.0, 1.0).astype(np.float32)


register_scorer("test-blue", blue_score, needs_probabilities=False)


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    bands: Sequence[str] = BANDS,
    crs: str = "EPSG:32633",
    transform: Affine | None = None,
    date: dt.date | None = None,
    nodata: float | None = 0,
) -> Path:
    import rasterio

    transform = transform or Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    profile = {
        "driver": "GTiff",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": data.shape[0],
        "dtype": str(data.dtype),
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        for i, band in enumerate(bands, start=1):
            ds.set_band_description(i, band)
        if date is not None:
            ds.update_tags(ACQUISITION_DATE=date.isoformat())
    return path


def clear_surface(k: int, size: int = SIZE, n_bands: int = len(BANDS)) -> np.ndarray:
    """A clear acquisition ``k``: vegetation-like DN with a texture and a per-date shift, so
    that every acquisition's spectra differ."""
    rng = np.random.default_rng(k)
    base = np.array([400, 700, 500, 3000, 2500, 1800][:n_bands], np.float64)[:, None, None]
    texture = rng.integers(0, 200, size=(n_bands, size, size))
    return (base + texture + 7 * k).astype(np.uint16)


def cloudy(data: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    out = data.copy()
    out[:, rows, cols] = CLOUD_DN + np.arange(out.shape[0])[:, None, None] * 11
    return out


#: (rows, cols) of the cloud in each of the five standard acquisitions; acquisition 4 is
#: fully cloudy over the first 10 rows and pixel (35, 35) is cloudy everywhere
CLOUDS = [
    (slice(0, 20), slice(0, 20)),
    (slice(10, 30), slice(10, 30)),
    (slice(20, 40), slice(0, 15)),
    (slice(0, 12), slice(25, 40)),
    (slice(0, 10), slice(0, 40)),
]


def make_series(folder: Path, n: int = 5) -> list[Path]:
    """``n`` acquisitions 2021-06-01 + 10 k days: clouds as in :data:`CLOUDS`, pixel (35, 35)
    cloudy in all (no clear observation)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        rows, cols = CLOUDS[k % len(CLOUDS)]
        data = cloudy(clear_surface(k), rows, cols)
        data[:, 35, 35] = CLOUD_DN
        date = dt.date(2021, 6, 1) + dt.timedelta(days=10 * k)
        paths.append(write_tif(folder / f"S2_{date:%Y%m%d}.tif", data, date=date))
    return paths


def write_item(path: Path, tif: Path, date: dt.date, bands: Sequence[str] = BANDS) -> Path:
    """A STAC item whose one asset is the multi-band ``tif``."""
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"S2X_{date:%Y%m%d}",
        "properties": {"datetime": f"{date.isoformat()}T10:00:00Z", "processing:level": "L2A"},
        "assets": {
            "data": {
                "href": str(tif),
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "eo:bands": [{"name": b} for b in bands],
                "raster:bands": [{"nodata": 0} for _ in bands],
            }
        },
    }
    path.write_text(json.dumps(item))
    return path


@pytest.fixture
def series(tmp_path: Path) -> list[Path]:
    return make_series(tmp_path / "in")
