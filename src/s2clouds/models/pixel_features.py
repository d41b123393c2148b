"""Per-pixel features of the pixel model: spectra, spectral indices and local context.

A feature is data: a row of :data:`FEATURES` with the bands it needs and how it is computed
from reflectance planes. The pixel model (:mod:`s2clouds.models.pixel`) stores the names of
the features it was trained on, so that the same stack is rebuilt at prediction time.

* **Spectra**: every band the model reads, as unitless 0-1 reflectance.
* **Indices** (in the spirit of s2cloudless and Fmask): NDVI, NDWI, NDSI (needs B11),
  visible brightness and whiteness, the haze-optimised transform (HOT) and NIR/SWIR ratio.
* **Local context** over square windows (edge in pixels at the model's resolution): local
  mean and standard deviation of brightness (cloud texture), the brightest pixel nearby
  (a cloud that may cast a shadow here) and how much darker than its surroundings a pixel
  is in NIR and brightness (shadow). Windows ignore no-data pixels (normalised convolution).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError, ModelError
from s2clouds.resample import box_mean

_EPS = 1e-6


class Planes:
    """Reflectance planes by band name with memoised derived signals.

    ``image``: (C, H, W) float32 reflectance in ``bands`` order, NaN where there is no data.
    """

    def __init__(self, image: np.ndarray, bands: Sequence[str]) -> None:
        self.bands = canonical_band_names(tuple(bands))
        if image.ndim != 3 or image.shape[0] != len(self.bands):
            raise BandError(
                f"pixel features need a (C, H, W) stack with one plane per band "
                f"({', '.join(self.bands)}); got shape {image.shape}"
            )
        self._image = image.astype(np.float32, copy=False)
        self._cache: dict[str, np.ndarray] = {}

    def band(self, name: str) -> np.ndarray:
        """(H, W) float32 reflectance of band ``name``."""
        return self._image[self.bands.index(name)]

    def feature(self, name: str) -> np.ndarray:
        """(H, W) float32 value of the feature ``name`` (a band or a table row; computed
        once)."""
        if name not in self._cache:
            self._cache[name] = feature_row(name).compute(self).astype(np.float32, copy=False)
        return self._cache[name]

    def window_mean(self, base: str, size: int) -> np.ndarray:
        """(H, W) mean of feature ``base`` over ``size`` x ``size`` windows (computed once,
        shared by the mean, std and anomaly features)."""
        key = f"{base}@mean{size}"
        if key not in self._cache:
            self._cache[key] = local_mean(self.feature(base), size)
        return self._cache[key]


@dataclass(frozen=True)
class Feature:
    """One per-pixel feature: ``needs`` the bands, ``radius`` pixels of context around a pixel."""

    name: str
    needs: tuple[str, ...]
    compute: Callable[[Planes], np.ndarray]
    description: str
    radius: int = 0


# ---------------------------------------------------------------------------- arithmetic
def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)`` (H, W), 0 where the sum is ~0, NaN where an input is NaN."""
    total = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.abs(total) <= _EPS, 0.0, (a - b) / total)


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` (H, W) with the denominator kept away from 0."""
    return a / np.maximum(b, 1e-3)


def visible_brightness(planes: Planes) -> np.ndarray:
    return (planes.band("B02") + planes.band("B03") + planes.band("B04")) / 3.0


def whiteness(planes: Planes) -> np.ndarray:
    """Fmask whiteness: mean absolute deviation of B02-B04 from their mean, over the mean."""
    mean = planes.feature("brightness")
    spread = sum(np.abs(planes.band(b) - mean) for b in ("B02", "B03", "B04"))
    return spread / np.maximum(mean, 1e-3)


def local_mean(values: np.ndarray, size: int) -> np.ndarray:
    """Mean (H, W) over a ``size`` x ``size`` window, ignoring NaN (NaN where all are)."""
    finite = np.isfinite(values)
    if finite.all():  # no gaps: a plain box filter (origin-independent: see box_mean)
        return box_mean(values, size)
    filled = np.where(finite, values, 0.0).astype(np.float32)
    total = box_mean(filled, size)
    count = box_mean(finite.astype(np.float32), size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 1e-3, total / count, np.nan)


def local_std(values: np.ndarray, size: int, mean: np.ndarray | None = None) -> np.ndarray:
    """Standard deviation (H, W) over a ``size`` x ``size`` window, ignoring NaN; ``mean``:
    the window mean of ``values`` when already known."""
    mean = local_mean(values, size) if mean is None else mean
    mean_sq = local_mean(values * values, size)
    return np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def local_max(values: np.ndarray, size: int) -> np.ndarray:
    """Maximum (H, W) over a ``size`` x ``size`` window, ignoring NaN."""
    filled = np.where(np.isfinite(values), values, -np.inf).astype(np.float32)
    out = ndimage.maximum_filter(filled, size, mode="reflect")
    return np.where(np.isfinite(out), out, np.nan)


# ---------------------------------------------------------------------------- the table
def _band_feature(band: str) -> Feature:
    return Feature(band, (band,), lambda p: p.band(band), f"{band} reflectance")


#: window statistic -> how a :class:`Planes` computes it for a base feature and window size
_WINDOW_STATISTICS: dict[str, Callable[[Planes, str, int], np.ndarray]] = {
    "mean": lambda p, base, size: p.window_mean(base, size),
    "std": lambda p, base, size: local_std(p.feature(base), size, p.window_mean(base, size)),
    "max": lambda p, base, size: local_max(p.feature(base), size),
    "anomaly": lambda p, base, size: p.feature(base) - p.window_mean(base, size),
}


def _context(base: str, statistic: str, size: int, needs: tuple[str, ...]) -> Feature:
    compute = _WINDOW_STATISTICS[statistic]
    return Feature(
        f"{base}_{statistic}{size}",
        needs,
        lambda p: compute(p, base, size),
        f"local {statistic} of {base} over {size} x {size} px",
        radius=size // 2,
    )


_VIS = ("B02", "B03", "B04")
_FEATURE_ROWS: tuple[Feature, ...] = (
    Feature("brightness", _VIS, visible_brightness, "mean of B02, B03, B04"),
    Feature("whiteness", _VIS, whiteness, "Fmask whiteness of B02-B04"),
    Feature(
        "hot",
        ("B02", "B04"),
        lambda p: p.band("B02") - 0.5 * p.band("B04") - 0.08,
        "haze-optimised transform B02 - 0.5 B04 - 0.08",
    ),
    Feature(
        "ndvi",
        ("B04", "B08"),
        lambda p: normalised_difference(p.band("B08"), p.band("B04")),
        "(B08 - B04) / (B08 + B04)",
    ),
    Feature(
        "ndwi",
        ("B03", "B08"),
        lambda p: normalised_difference(p.band("B03"), p.band("B08")),
        "(B03 - B08) / (B03 + B08)",
    ),
    Feature(
        "ndsi",
        ("B03", "B11"),
        lambda p: normalised_difference(p.band("B03"), p.band("B11")),
        "(B03 - B11) / (B03 + B11): snow vs cloud",
    ),
    Feature(
        "nir_swir",
        ("B08", "B11"),
        lambda p: ratio(p.band("B08"), p.band("B11")),
        "B08 / B11 (Fmask ratio test)",
    ),
    Feature(
        "blue_nir",
        ("B02", "B08"),
        lambda p: ratio(p.band("B02"), p.band("B08")),
        "B02 / B08: blue-bright haze and cloud vs vegetation",
    ),
    Feature("nir", ("B08",), lambda p: p.band("B08"), "B08 reflectance (context base)"),
    _context("brightness", "mean", 7, _VIS),
    _context("brightness", "std", 7, _VIS),
    _context("brightness", "mean", 31, _VIS),
    _context("brightness", "std", 31, _VIS),
    _context("brightness", "max", 31, _VIS),
    _context("brightness", "anomaly", 31, _VIS),
    _context("nir", "anomaly", 31, ("B08",)),
    _context("nir", "mean", 7, ("B08",)),
    _context("nir", "anomaly", 63, ("B08",)),
    _context("brightness", "max", 63, _VIS),
)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in _FEATURE_ROWS}


def feature_row(name: str) -> Feature:
    """The :class:`Feature` called ``name``: a table row, or a band name (its reflectance)."""
    if name in FEATURES_BY_NAME:
        return FEATURES_BY_NAME[name]
    try:
        (band,) = canonical_band_names(name)
    except Exception as exc:
        raise ModelError(
            f"unknown pixel feature {name!r}; features are band names or one of "
            f"{', '.join(FEATURES_BY_NAME)}"
        ) from exc
    return _band_feature(band)


def default_features(bands: Sequence[str], *, max_radius: int | None = None) -> tuple[str, ...]:
    """Every feature computable from ``bands``: the bands themselves, then each table row
    whose bands are all present (``nir`` itself is left out: it repeats B08); with
    ``max_radius``, only rows whose context window reaches at most that many pixels."""
    names = canonical_band_names(tuple(bands))
    rows = [
        f.name
        for f in _FEATURE_ROWS
        if f.name != "nir"
        and set(f.needs) <= set(names)
        and (max_radius is None or f.radius <= max_radius)
    ]
    return (*names, *rows)


def features_halo(names: Sequence[str]) -> int:
    """Pixels of context the features ``names`` read around a pixel."""
    return max((feature_row(n).radius for n in names), default=0)


def check_feature_bands(names: Sequence[str], bands: Sequence[str]) -> None:
    """Refuse features that need bands outside ``bands`` (:class:`BandError`)."""
    have = set(canonical_band_names(tuple(bands)))
    for name in names:
        missing = [b for b in feature_row(name).needs if b not in have]
        if missing:
            raise BandError(
                f"pixel feature {name!r} needs the band(s) {', '.join(missing)}, which the "
                f"model's bands ({', '.join(sorted(have))}) lack; add them or drop the feature"
            )


def pixel_features(image: np.ndarray, bands: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """Feature stack (F, H, W) float32 in ``names`` order from reflectance ``image``
    (C, H, W) float32 0-1 in ``bands`` order (NaN = no data stays NaN)."""
    check_feature_bands(names, bands)
    planes = Planes(image, bands)
    stack = np.empty((len(names), *image.shape[1:]), dtype=np.float32)
    for i, name in enumerate(names):
        stack[i] = planes.feature(name)
    return stack


def sampled_features(
    image: np.ndarray, bands: Sequence[str], names: Sequence[str], rows: slice, cols: slice
) -> np.ndarray:
    """``pixel_features(image, bands, names)[:, rows, cols]`` (F, h, w) float32, without the
    full stack: features of one pixel (spectra, indices) are computed on the sampled pixels
    only, context features on the whole image and then sampled. Bit-identical."""
    check_feature_bands(names, bands)
    full = Planes(image, bands)
    sampled = Planes(image[:, rows, cols], bands)
    out = np.empty((len(names), *sampled.band(sampled.bands[0]).shape), dtype=np.float32)
    for i, name in enumerate(names):
        local = feature_row(name).radius == 0
        out[i] = sampled.feature(name) if local else full.feature(name)[rows, cols]
    return out
