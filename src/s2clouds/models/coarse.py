"""Models that run on a coarser grid than their input: block means in, bilinear back out.

Shared by the models whose operating point is coarser than the usual 10 m input: pixel
models trained at 20 m, CD-FCNN and ukis-csmask at 30 m, s2cloudless at 160 m.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from s2clouds.models.base import ModelContext, fill_clear
from s2clouds.resample import block_mean, upsample_bilinear

#: model-name suffix of a peer run at the input's resolution instead of its operating point
#: (``ukis-csmask@native``, ``cd-fcnn@native``, ``s2cloudless@native``)
NATIVE_SUFFIX = "@native"


def resolution_factor(model_resolution: float, context: ModelContext) -> int:
    """How many input pixels (along each axis) make one pixel of a model that runs at
    ``model_resolution`` metres: that over ``context.resolution``, rounded; 1 when the
    input is not at least 1.5 times finer or its resolution is unknown."""
    resolution = context.resolution
    if not resolution or model_resolution < 1.5 * float(resolution):
        return 1
    return max(1, int(round(model_resolution / float(resolution))))


def predict_on_blocks(
    image: np.ndarray,
    factor: int,
    predict: Callable[[np.ndarray], np.ndarray],
    *,
    fill: float = np.nan,
) -> np.ndarray:
    """Probabilities (K, H, W) float32 of ``predict`` run on ``factor`` x ``factor`` block
    means of reflectance ``image`` (C, H, W) and interpolated back bilinearly (pixel centres).

    ``predict`` maps (C, h, w) block means to (K, h, w) probabilities; blocks without any
    finite pixel hold ``fill`` (NaN: no data, which ``predict`` must accept). Input pixels
    that are NaN in any band get clear = 1 (class 0), like every model's no-data pixels.
    """
    if factor == 1:
        return predict(image).astype(np.float32, copy=False)
    coarse = predict(block_mean(image, factor, fill=fill))
    probs = upsample_bilinear(coarse, factor, image.shape[1:])
    missing = ~np.all(np.isfinite(image), axis=0)
    if missing.any():
        fill_clear(probs, missing)
    return probs
