"""Cloud shadow must have a cloud up-sun: a geometric constraint on predicted shadow.

A pixel model judges each pixel from its spectrum and a little context, so dark water,
forest, burn scars and city blocks can look like shadow. A shadow exists only where a cloud
lies towards the sun at a plausible height. :func:`shadow_reach` marks where the cloud of a
mask can cast its shadow:

* with the sun angles known (metadata, or estimated from the image): the cloud mask shifted
  away from the sun for every cloud height up to the reach (the projection of the physical
  model, :meth:`~s2clouds.models.physical.PhysicalModel.shadow_offsets`), grown by a margin;
* with the sun unknown: every pixel within the reach of a cloud, in any direction.

:func:`constrain_shadow` moves the shadow probability of pixels outside that reach to clear.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from s2clouds.models.base import ModelContext, ShadowReachMapper
    from s2clouds.models.weights import WeightSpec

#: probability of thick cloud above which a pixel counts as a shadow-casting cloud
CLOUD_PROBABILITY = 0.5
#: radius (pixels of the grid the constraint runs on) of the opening that removes specks
OPENING_PX = 2
#: pixels the projected cloud is grown by (cloud edges and heights between the steps)
MARGIN_PX = 2
#: pixels beyond the reach that decide the constraint at a pixel (opening and margin)
CONTEXT_PX = 2 * OPENING_PX + MARGIN_PX + 1


def shadow_reach(
    cloud: np.ndarray,
    resolution: float,
    reach_m: float,
    sun: tuple[float, float] | None = None,
) -> np.ndarray:
    """(H, W) bool: where a cloud of ``cloud`` (H, W) bool can cast its shadow.

    ``resolution``: pixel size in metres; ``reach_m``: the farthest a shadow may lie from its
    cloud (metres, horizontally); ``sun``: (zenith, azimuth) in degrees, or None (unknown:
    any direction).
    """
    if not cloud.any():
        return np.zeros_like(cloud, dtype=bool)
    radius = reach_m / resolution
    if sun is None:
        return np.asarray(ndimage.distance_transform_edt(~cloud) <= radius + MARGIN_PX)
    from s2clouds.models.physical import PhysicalModel

    zenith, azimuth = sun
    offsets = [
        (r, c)
        for r, c in PhysicalModel.shadow_offsets(zenith, azimuth, resolution)
        if math.hypot(r, c) <= radius
    ] or [(0, 0)]
    projected = PhysicalModel.project(cloud, offsets) | cloud
    return np.asarray(ndimage.binary_dilation(projected, iterations=MARGIN_PX))


def casting_cloud(probs: np.ndarray, opening: int = OPENING_PX) -> np.ndarray:
    """(H, W) bool: cloud (thick + thin probability above :data:`CLOUD_PROBABILITY`) after a
    morphological opening of ``opening`` px: specks and threads (bright roofs, coastlines)
    cast no shadow. A local operation, so a window with :data:`CONTEXT_PX` of margin beyond
    the reach decides as the whole scene would."""
    cloud = (probs[1] + probs[2]) > CLOUD_PROBABILITY
    if opening == 0 or not cloud.any():
        return np.asarray(cloud)
    return np.asarray(ndimage.binary_opening(cloud, iterations=opening))


def constrain_shadow(
    probs: np.ndarray, resolution: float, reach_m: float, sun: tuple[float, float] | None
) -> np.ndarray:
    """Canonical probabilities (4, H, W) with the shadow probability of pixels that no
    cloud can shade moved to clear (in place; also returned)."""
    return keep_shadow_within(probs, shadow_reach(casting_cloud(probs), resolution, reach_m, sun))


def keep_shadow_within(probs: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Canonical probabilities (4, H, W) with the shadow probability of pixels outside
    ``reach`` (H, W) bool moved to clear (in place; also returned)."""
    outside = ~reach
    probs[0][outside] += probs[3][outside]
    probs[3][outside] = 0.0
    return probs


def sun_from_context(context: ModelContext) -> tuple[float, float] | None:
    """(zenith, azimuth) degrees from a model context, or None when either is missing."""
    zenith, azimuth = context.sun_zenith, context.sun_azimuth
    if isinstance(zenith, int | float) and isinstance(azimuth, int | float):
        return float(zenith), float(azimuth)
    return None


class ShadowGeometry:
    """What a model backed by a weight spec gains when its spec sets ``shadow_reach_m``:
    shadow kept only where a cloud of its own mask can cast it, per window or from a map of
    the whole scene made by the engine (``context.scene_shadow_reach``). Mixed into
    :class:`~s2clouds.models.pixel.PixelModel` and :class:`~s2clouds.models.onnx_model.OnnxModel`;
    a spec without a reach leaves every method a no-op."""

    spec: WeightSpec

    if TYPE_CHECKING:  # provided by the model class it is mixed into

        def internal_factor(self, context: ModelContext) -> int: ...

    def shadow_halo(self, context: ModelContext) -> int:
        """Input pixels a cloud beyond the window may cast shadow from (0 without a reach,
        or when the engine applies a scene-level reach map)."""
        if self.spec.shadow_reach_m <= 0 or context.scene_shadow_reach:
            return 0
        resolution = float(context.resolution or self.spec.resolution)
        factor = self.internal_factor(context)
        return int(math.ceil(self.spec.shadow_reach_m / resolution)) + CONTEXT_PX * factor

    def with_shadow_geometry(
        self, probs: np.ndarray, context: ModelContext, factor: int
    ) -> np.ndarray:
        """``probs`` (4, h, w) on a grid ``factor`` x the input's pixel size, with shadow
        that no cloud can cast moved to clear when the spec sets a shadow reach (unless the
        engine applies a scene-level reach map: ``context.scene_shadow_reach``)."""
        if self.spec.shadow_reach_m <= 0 or context.scene_shadow_reach:
            return probs
        resolution = float(context.resolution or self.spec.resolution / factor) * factor
        return constrain_shadow(
            probs, resolution, self.spec.shadow_reach_m, sun_from_context(context)
        )

    @property
    def overview_shadow_reach(self) -> ShadowReachMapper | None:
        """:meth:`shadow_reach_of_overview` when the spec sets a shadow reach, else None."""
        return self.shadow_reach_of_overview if self.spec.shadow_reach_m > 0 else None

    def shadow_reach_of_overview(
        self, probs: np.ndarray, resolution: float, context: ModelContext
    ) -> np.ndarray:
        """(h, w) bool: where the clouds of a scene overview can cast their shadow (the
        spec's shadow reach along the sun azimuth of ``context``), from this model's
        probabilities (4, h, w) on the overview at ``resolution`` m. The opening that keeps
        specks from casting shadow keeps its size in metres (fewer pixels on an overview)."""
        opening = round(OPENING_PX * self.spec.resolution / resolution)
        cloud = casting_cloud(probs, opening=opening)
        return shadow_reach(cloud, resolution, self.spec.shadow_reach_m, sun_from_context(context))
