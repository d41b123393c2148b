"""The physical cloud and shadow scores of the SEN12MS cloud-free workflow.

After Schmitt et al. (2019), "Aggregating cloud-free Sentinel-2 images with Google Earth
Engine" (the quality score module used to build SEN12MS), itself derived from the Landsat
"simple cloud score":

* **Cloud score**: every pixel starts as cloud (1.0); each spectral test rescales a band
  combination linearly between two limits and the score is the minimum over all tests:
  blue brightness (B02, 0.1-0.5), aerosol brightness (B01, 0.1-0.3), aerosol plus cirrus
  (B01 + B10, 0.15-0.2), visible sum (B02 + B03 + B04, 0.2-0.8), moisture (NDMI from B08
  and B11, -0.1-0.1) and "not snow" (NDSI from B03 and B11, 0.8-0.6, falling). The score is
  smoothed by a 5 x 5 grey closing and a 7 x 7 mean (sizes at 10 m, scaled with resolution)
  and thresholded at 0.2 (0.1 for the 4-band variant, chosen on the three On Cloud N dev
  chips in shared/data/real; no other fitting was done).
* **Shadow score**: dark pixels (NIR + SWIR) that lie under the cloud mask projected away from
  the sun, along the sun azimuth, for cloud heights of 200-4000 m (distance = height x
  tan(sun zenith)).

Band availability. Tests whose bands are missing are skipped. With only blue, green, red and
NIR (e.g. the On Cloud N chips), the cloud score keeps the blue and visible-sum tests and adds
two visible/NIR substitutes for the lost SWIR tests: a whiteness test (clouds are spectrally
flat: low NDVI, 0.35 falling to 0.1) and the haze-optimised transform (HOT = B02 - 0.5 B04,
0.0-0.08). Snow and bright desert cannot be told from cloud without SWIR. Darkness for shadows
uses NIR alone (below 0.16) where SWIR is absent.

Thick and thin cloud: the scores cannot tell them apart, so all cloud is reported as thick
cloud (class 1) and the thin-cloud probability is zero. Say so when comparing thin cloud.

Sun angles: from the scene metadata (``context.sun_zenith``/``.sun_azimuth``). When
unknown, the azimuth is estimated from the image: the direction (of 16) in which the projected
clouds cover the most dark pixels, at a nominal zenith of 35 degrees. The inference engine does
this once per scene on an overview (:meth:`PhysicalModel.estimate_sun_angles`); a bare
``predict_proba`` call without angles estimates them from the array it is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from s2clouds.bands import canonical_band_names
from s2clouds.errors import BandError
from s2clouds.labels.change import shift_mask
from s2clouds.models.base import ASSUMED_RESOLUTION_M, CloudModel, ModelContext
from s2clouds.models.pixel_features import normalised_difference
from s2clouds.resample import box_mean

CLOUD_THRESHOLD = 0.2  # Schmitt et al. (2019), with SWIR
CLOUD_THRESHOLD_RGBN = 0.1  # 4-band variant: chosen on the On Cloud N dev chips (3 images)
CLOUD_HEIGHTS_M = (200.0, 4000.0)
NOMINAL_ZENITH = 35.0
MINIMUM_BANDS = ("B02", "B03", "B04", "B08")
OPTIONAL_BANDS = ("B01", "B10", "B11")


def rescale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear map of ``values`` so that ``low`` -> 0 and ``high`` -> 1 (``high < low`` falls)."""
    return (values - low) / (high - low)


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`~s2clouds.models.pixel_features.normalised_difference` with no data as 0."""
    return np.nan_to_num(normalised_difference(a, b), nan=0.0, posinf=0.0, neginf=0.0)


def _kernel(size_at_10m: int, resolution: float) -> int:
    return max(1, round(size_at_10m * 10.0 / resolution))


@dataclass(frozen=True)
class PhysicalModel(CloudModel):
    """SEN12MS cloud and shadow scores (see module docstring). No training data, no weights."""

    bands: tuple[str, ...] = MINIMUM_BANDS
    name: str = "physical"
    halo: int = 64

    @classmethod
    def for_bands(cls, available: Sequence[str]) -> PhysicalModel:
        """The variant using every supported band among ``available`` (at least B02-B04, B08)."""
        have = set(canonical_band_names(available))
        missing = [b for b in MINIMUM_BANDS if b not in have]
        if missing:
            raise BandError(
                f"the physical model needs at least {', '.join(MINIMUM_BANDS)}; missing "
                f"{', '.join(missing)}"
            )
        extra = tuple(b for b in OPTIONAL_BANDS if b in have)
        return cls(bands=MINIMUM_BANDS + extra)

    @property
    def threshold(self) -> float:
        """Cloud score threshold: the paper's with SWIR, the dev-chip one for 4 bands."""
        return CLOUD_THRESHOLD if "B11" in self.bands else CLOUD_THRESHOLD_RGBN

    # ------------------------------------------------------------------ cloud score
    def cloud_score(self, image: np.ndarray, resolution: float) -> np.ndarray:
        """Smoothed cloud score (H, W) float32 in [0, 1] from reflectance (C, H, W)."""
        b = {name: np.nan_to_num(image[i], nan=0.0) for i, name in enumerate(self.bands)}
        score = np.ones(image.shape[1:], dtype=np.float32)
        for test in self._cloud_tests(b):
            np.minimum(score, test, out=score)
        np.clip(score, 0.0, 1.0, out=score)
        score = ndimage.grey_closing(score, size=(_kernel(5, resolution),) * 2)
        # a box mean whose value does not depend on the window's origin (see box_mean)
        score = box_mean(score, _kernel(7, resolution), mode="nearest")
        return score.astype(np.float32, copy=False)

    @staticmethod
    def _cloud_tests(b: dict[str, np.ndarray]) -> list[np.ndarray]:
        blue, green, red, nir = b["B02"], b["B03"], b["B04"], b["B08"]
        tests = [rescale(blue, 0.1, 0.5), rescale(blue + green + red, 0.2, 0.8)]
        if "B01" in b:
            tests.append(rescale(b["B01"], 0.1, 0.3))
            if "B10" in b:
                tests.append(rescale(b["B01"] + b["B10"], 0.15, 0.2))
        if "B11" in b:
            tests.append(rescale(normalized_difference(nir, b["B11"]), -0.1, 0.1))
            tests.append(rescale(normalized_difference(green, b["B11"]), 0.8, 0.6))
        else:
            tests.append(rescale(normalized_difference(nir, red), 0.5, 0.2))
            tests.append(rescale(blue - 0.5 * red, 0.0, 0.08))
        return tests

    # ----------------------------------------------------------------- shadow score
    def darkness(self, image: np.ndarray) -> np.ndarray:
        """Shadow darkness score (H, W) in [0, 1]: 1 for very dark NIR (+ SWIR) pixels."""
        idx = {name: i for i, name in enumerate(self.bands)}
        nir = np.nan_to_num(image[idx["B08"]], nan=1.0)
        if "B11" in idx:
            swir = np.nan_to_num(image[idx["B11"]], nan=1.0)
            return np.clip(rescale((nir + swir) / 2, 0.16, 0.10), 0.0, 1.0)
        return np.clip(rescale(nir, 0.16, 0.10), 0.0, 1.0)

    @staticmethod
    def shadow_offsets(zenith: float, azimuth: float, resolution: float) -> list[tuple[int, int]]:
        """Pixel offsets (rows, cols) from a cloud to its shadow for the cloud height range."""
        tan_z = math.tan(math.radians(min(zenith, 80.0)))
        az = math.radians(azimuth)
        d_min, d_max = (h * tan_z / resolution for h in CLOUD_HEIGHTS_M)
        steps = int(min(32, max(2, d_max - d_min)))
        offsets = []
        for d in np.linspace(d_min, d_max, steps):
            # shadows fall away from the sun: rows grow southward, cols eastward
            offsets.append((round(d * math.cos(az)), round(-d * math.sin(az))))
        return sorted(set(offsets))

    @staticmethod
    def project(mask: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
        """Union of ``mask`` (H, W) bool shifted by each (row, col) offset, without wrapping."""
        out = np.zeros_like(mask)
        for rows, cols in offsets:
            out |= shift_mask(mask, rows, cols)
        return out

    def estimate_azimuth(self, cloud: np.ndarray, dark: np.ndarray, resolution: float) -> float:
        """Sun azimuth (deg) whose projected clouds cover the most dark pixels."""
        best, best_hits = 0.0, -1.0
        for azimuth in np.arange(0.0, 360.0, 22.5):
            zone = self.project(cloud, self.shadow_offsets(NOMINAL_ZENITH, azimuth, resolution))
            hits = float(dark[zone & ~cloud].sum())
            if hits > best_hits:
                best, best_hits = float(azimuth), hits
        return best

    def estimate_sun_angles(self, overview: np.ndarray, resolution: float) -> tuple[float, float]:
        """``(zenith, azimuth)`` (deg) for a scene without known sun angles, from a whole-scene
        overview (C, h, w) reflectance at ``resolution`` m: the nominal zenith and the azimuth
        whose projected clouds cover the most dark pixels. The inference engine calls this
        once per scene, so that every block casts shadows the same way."""
        cloud = self.cloud_score(overview, resolution) >= self.threshold
        dark = self.darkness(overview) > 0.5
        return NOMINAL_ZENITH, self.estimate_azimuth(cloud, dark, resolution)

    def required_halo(self, context: ModelContext) -> int:
        """Pixels of context needed around a tile so that shadows of clouds outside it appear."""
        zenith = context.sun_zenith or NOMINAL_ZENITH
        resolution = float(
            context.resolution if context.resolution is not None else ASSUMED_RESOLUTION_M
        )
        return (
            int(
                math.ceil(
                    CLOUD_HEIGHTS_M[1] * math.tan(math.radians(min(zenith, 80.0))) / resolution
                )
            )
            + 8
        )

    # -------------------------------------------------------------------- protocol
    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        """Canonical class probabilities (4, H, W) float32 from reflectance (C, H, W)."""
        if image.ndim != 3 or image.shape[0] != len(self.bands):
            raise BandError(
                f"the physical model expects {len(self.bands)} bands ({', '.join(self.bands)}) "
                f"as (C, H, W); got shape {image.shape}"
            )
        resolution = float(
            context.resolution if context.resolution is not None else ASSUMED_RESOLUTION_M
        )
        score = self.cloud_score(image, resolution)
        p_cloud = 1.0 / (1.0 + np.exp(-(score - self.threshold) / 0.03))
        cloud = score >= self.threshold
        dark = self.darkness(image)
        azimuth = context.sun_azimuth
        zenith = context.sun_zenith
        if azimuth is None or zenith is None:
            azimuth, zenith = self.estimate_azimuth(cloud, dark > 0.5, resolution), NOMINAL_ZENITH
        zone = self.project(cloud, self.shadow_offsets(zenith, azimuth, resolution))
        zone = ndimage.binary_dilation(zone, iterations=_kernel(3, resolution))
        p_shadow = (1.0 - p_cloud) * dark * zone
        probs = np.empty((4, *score.shape), dtype=np.float32)
        probs[1] = p_cloud
        probs[2] = 0.0
        probs[3] = p_shadow
        probs[0] = 1.0 - probs[1] - probs[3]
        return probs
