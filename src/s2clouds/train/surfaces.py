"""Real training images beyond the labelled datasets: clear hard surfaces, and the
radiometric and scale variants that let one model serve L1C and L2A input at 10-60 m.

* **Readers** of the cloud-free real crops in ``shared/data/real`` (``dsen2`` ``.npz``
  arrays at native resolutions, ``s2_100k`` 12-band L2A GeoTIFFs whose baseline offset is
  decided from the data, ``mojave_l2a`` 5-band GeoTIFFs): each returns (C, H, W) float32
  reflectance at 10 m and its band names.
* **Variants**: :func:`l2a_like` removes a Rayleigh-like path reflectance from TOA data,
  :func:`toa_like` adds one to surface reflectance (both by band wavelength, with a random
  strength); :func:`impute_cirrus` gives clear images without B10 a plausible clear-sky
  cirrus band (a small share of the SWIR reflectance: surface signal leaking through water
  vapour, highest over dry bright ground); :func:`coarsen` block-averages to a coarser grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2clouds.bands import L1C_BANDS, canonical_band_names
from s2clouds.errors import DatasetError
from s2clouds.labels import NODATA

#: path reflectance of a clear standard atmosphere per band at strength 1 (TOA - surface,
#: Rayleigh scattering falling with wavelength ~ lambda^-4, plus a little aerosol)
PATH_REFLECTANCE = {
    "B01": 0.085,
    "B02": 0.06,
    "B03": 0.035,
    "B04": 0.02,
    "B05": 0.016,
    "B06": 0.012,
    "B07": 0.01,
    "B08": 0.008,
    "B8A": 0.007,
    "B09": 0.004,
    "B10": 0.0,
    "B11": 0.002,
    "B12": 0.001,
}
#: DSen2 arrays: key -> band names
DSEN2_KEYS = {
    "b10m": ("B02", "B03", "B04", "B08"),
    "b20m": ("B05", "B06", "B07", "B8A", "B11", "B12"),
    "b60m": ("B01", "B09"),
}


@dataclass
class Labelled:
    """One training image: ``image`` (C, H, W) float32 reflectance in ``bands`` order,
    ``target`` (H, W) uint8 canonical labels (255 ignore), ``level`` ("L1C"/"L2A"),
    ``name`` for reports and ``weight`` of its pixels in the fit."""

    image: np.ndarray
    bands: tuple[str, ...]
    target: np.ndarray
    level: str
    name: str
    weight: float = 1.0

    def select(self, bands: Sequence[str]) -> Labelled:
        """The same image reduced to ``bands`` (all must be present)."""
        idx = [self.bands.index(b) for b in bands]
        return Labelled(
            self.image[idx], tuple(bands), self.target, self.level, self.name, self.weight
        )


def all_clear(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 target: clear (0) where every band is finite, else ignore."""
    return np.where(np.all(np.isfinite(image), axis=0), 0, NODATA).astype(np.uint8)


def _upsample(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(C, h, w) repeated to (C, H, W) by nearest neighbour (H, W multiples of h, w or
    cropped/padded by one cell)."""
    fy, fx = -(-shape[0] // array.shape[1]), -(-shape[1] // array.shape[2])
    big = np.repeat(np.repeat(array, fy, axis=1), fx, axis=2)
    return big[:, : shape[0], : shape[1]]


def read_dsen2(path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """A DSen2 ``.npz`` crop as (12, H, W) float32 reflectance at 10 m (B10 absent)."""
    try:
        data = np.load(path)
        parts = {key: data[key].astype(np.float32) / 10000.0 for key in DSEN2_KEYS}
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: not a DSen2 crop with b10m/b20m/b60m ({exc})") from exc
    shape = parts["b10m"].shape[1:]
    planes = {}
    for key, names in DSEN2_KEYS.items():
        full = _upsample(parts[key], shape)
        for i, name in enumerate(names):
            planes[name] = full[i]
    bands = tuple(b for b in L1C_BANDS if b in planes)
    image = np.stack([planes[b] for b in bands])
    image[:, np.any(image <= 0, axis=0)] = np.nan
    return image, bands


def read_geotiff_dn(
    path: str | Path, *, offset: float | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """A uint16 GeoTIFF of DN x 10000 as (C, H, W) float32 reflectance with its band names
    (from the descriptions). 0 is no data. ``offset``: DN to subtract; None decides from the
    data: 1000 (baseline 04.00) when no valid DN lies below 1000, else 0."""
    import rasterio

    with rasterio.open(path) as ds:
        dn = ds.read().astype(np.float32)
        bands = canonical_band_names(tuple(d or "" for d in ds.descriptions))
    nodata = np.all(dn == 0, axis=0)
    if offset is None:
        valid = dn[:, ~nodata]
        offset = 1000.0 if valid.size and valid.min() >= 1000 else 0.0
    image = (dn - offset) / 10000.0
    image[:, nodata] = np.nan
    return image, bands


def l2a_like(image: np.ndarray, bands: Sequence[str], strength: float) -> np.ndarray:
    """TOA reflectance (C, H, W) with ``strength`` x the path reflectance removed (clipped
    at 0.001): an approximation of surface reflectance."""
    path = np.asarray([PATH_REFLECTANCE.get(b, 0.0) for b in bands], np.float32)
    return np.maximum(image - strength * path[:, None, None], 0.001)


def toa_like(image: np.ndarray, bands: Sequence[str], strength: float) -> np.ndarray:
    """Surface reflectance (C, H, W) with ``strength`` x the path reflectance added."""
    path = np.asarray([PATH_REFLECTANCE.get(b, 0.0) for b in bands], np.float32)
    return image + strength * path[:, None, None]


def impute_cirrus(
    image: np.ndarray, bands: Sequence[str], leak: float
) -> tuple[np.ndarray, tuple[str, ...]]:
    """A clear image without B10 given a clear-sky cirrus band: ``leak`` x B12 (+ 0.0005),
    inserted in the standard band order. Returns the new stack and band names."""
    names = tuple(bands)
    cirrus = leak * image[names.index("B12")] + 0.0005
    out_names = tuple(b for b in L1C_BANDS if b in names or b == "B10")
    planes = {b: image[names.index(b)] for b in names} | {"B10": cirrus}
    return np.stack([planes[b] for b in out_names]).astype(np.float32), out_names


def coarsen(image: np.ndarray, target: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Block means (C, H//f, W//f) of ``image`` and the labels of blocks whose labelled
    pixels all agree (else 255), cropping any remainder."""
    c, h, w = image.shape
    hh, ww = h // factor, w // factor
    blocks = image[:, : hh * factor, : ww * factor].reshape(c, hh, factor, ww, factor)
    with np.errstate(invalid="ignore"):
        small = np.nanmean(blocks, axis=(2, 4)).astype(np.float32)
    t = target[: hh * factor, : ww * factor].reshape(hh, factor, ww, factor)
    first = t[:, 0, :, 0]
    same = np.all(t == first[:, None, :, None], axis=(1, 3))
    return small, np.where(same, first, NODATA).astype(np.uint8)
