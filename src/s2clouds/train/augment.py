"""Seeded numpy augmentations that keep masks exact.

Geometric transforms (flips, 90-degree rotations, crops) move image and target together
pixel for pixel; radiometric ones (brightness, haze) change only the image, by amounts small
enough not to change what a pixel is. Images are (C, H, W) float32 reflectance (0-1, NaN =
no data), targets (H, W) uint8 canonical labels with 255 = ignore.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from s2clouds.bands import band_info
from s2clouds.labels import NODATA

#: wavelength (nm) the haze amplitude refers to (blue); other bands get (490 / lambda)^2
HAZE_REFERENCE_NM = 490.0


def flip_rotate(
    image: np.ndarray, target: np.ndarray, quarter_turns: int, flip: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate both by ``quarter_turns`` x 90 degrees, then mirror left-right when ``flip``."""
    image = np.rot90(image, quarter_turns, axes=(-2, -1))
    target = np.rot90(target, quarter_turns, axes=(-2, -1))
    if flip:
        image, target = image[..., ::-1], target[..., ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(target)


def pad_to_size(image: np.ndarray, target: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad at the bottom and right up to ``size`` x ``size``: image with NaN (no data),
    target with 255 (ignored), so that samples of any size stack into batches."""
    h, w = target.shape
    pad_h, pad_w = max(0, size - h), max(0, size - w)
    if pad_h == 0 and pad_w == 0:
        return image, target
    image = np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=np.nan)
    target = np.pad(target, ((0, pad_h), (0, pad_w)), constant_values=NODATA)
    return image, target


def crop_origin(target: np.ndarray, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a ``size`` crop centred on a random labelled pixel (clamped to the
    array), so crops fall inside the valid area; uniform when nothing is labelled."""
    h, w = target.shape
    rows, cols = np.nonzero(target != NODATA)
    if rows.size:
        pick = rng.integers(rows.size)
        centre_r, centre_c = int(rows[pick]), int(cols[pick])
    else:
        centre_r, centre_c = int(rng.integers(h)), int(rng.integers(w))
    row = min(max(0, centre_r - size // 2), max(0, h - size))
    col = min(max(0, centre_c - size // 2), max(0, w - size))
    return row, col


def random_crop(
    image: np.ndarray, target: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` crop inside the labelled area (padded when the input is smaller)."""
    image, target = pad_to_size(image, target, size)
    row, col = crop_origin(target, size, rng)
    window = (slice(row, row + size), slice(col, col + size))
    return image[:, window[0], window[1]], target[window]


def haze_spectrum(bands: Sequence[str]) -> np.ndarray:
    """Relative haze (path radiance) per band, (C,) float32: ``(490 nm / lambda)^2``, 1 at
    blue; bands without a wavelength get 0."""
    out = []
    for band in bands:
        wavelength = band_info(band).wavelength_s2a
        out.append(0.0 if wavelength is None else (HAZE_REFERENCE_NM / wavelength) ** 2)
    return np.asarray(out, dtype=np.float32)


def jitter_radiometry(
    image: np.ndarray,
    bands: Sequence[str],
    rng: np.random.Generator,
    *,
    brightness: float,
    haze: float,
) -> np.ndarray:
    """Brightness gain (one factor in ``1 +- brightness``, each band varied by a further
    +-``brightness / 4``) and a thin haze veil: ``x (1 - t) + t * spectrum`` with blue
    haze reflectance ``t`` uniform in [0, ``haze``]. Returns (C, H, W) float32; NaN kept."""
    c = image.shape[0]
    common = 1.0 + rng.uniform(-brightness, brightness)
    gain = common * (1.0 + rng.uniform(-brightness / 4, brightness / 4, size=c))
    t = rng.uniform(0.0, haze) if haze > 0 else 0.0
    offset = t * haze_spectrum(bands)
    scale = np.asarray(gain * (1.0 - t), dtype=np.float32)
    out = image * scale[:, None, None]
    out += offset[:, None, None]
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Augmentation:
    """The augmentations of a training run, applied in order: crop, flip/rotate, radiometry.

    ``crop``: edge of the square training patches (None: keep the full sample).
    ``flips``/``rotations``: random mirror and quarter turns. ``brightness``: relative gain
    range; ``haze``: maximum haze reflectance at blue (0 disables).
    """

    crop: int | None = 256
    flips: bool = True
    rotations: bool = True
    brightness: float = 0.1
    haze: float = 0.02

    def __call__(
        self,
        image: np.ndarray,
        target: np.ndarray,
        bands: Sequence[str],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augmented (C, h, w) float32 image and (h, w) uint8 target (h = w = ``crop``)."""
        if self.crop is not None:
            image, target = random_crop(image, target, self.crop, rng)
        turns = int(rng.integers(4)) if self.rotations else 0
        flip = bool(rng.random() < 0.5) if self.flips else False
        image, target = flip_rotate(image, target, turns, flip)
        if self.brightness > 0 or self.haze > 0:
            image = jitter_radiometry(image, bands, rng, brightness=self.brightness, haze=self.haze)
        return image, target


#: no random change at all (validation): full samples as they are
NO_AUGMENTATION = Augmentation(crop=None, flips=False, rotations=False, brightness=0.0, haze=0.0)
