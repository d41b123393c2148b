"""Per-pixel quality of an observation, in [0, 1]: named, pluggable scorers.

A scorer is a function::

    scorer(image, probs, *, bands, pixel_size) -> (H, W) float32 in [0, 1]

``image`` is (C, H, W) float32 reflectance named by ``bands`` (NaN = no data); ``probs`` is
(4, H, W) float32 canonical class probabilities (clear, thick cloud, thin cloud, shadow) from
the masker, or None for scorers registered with ``needs_probabilities=False`` (then no model
is run); ``pixel_size`` is metres per pixel. Higher is better; an observation counts as clear
when its quality reaches the run's ``min_quality`` (default 0.5). The composite gives each
scorer the window grown by :data:`DISTANCE_CAP_M` (or the run's cap) on every side, so
distances do not depend on where windows are cut.

Built-in scorers (:func:`list_scorers`):

``probability`` (default)
    ``p_clear x (1 - 0.5 x max(0, 1 - d / cap))``: the masker's clear probability (1 minus
    cloud, thin cloud and shadow), halved right next to a cloud or shadow pixel (``d`` is the
    distance in metres to the nearest pixel whose most probable class is not clear, from a
    Euclidean distance transform) and full from ``cap`` metres away (default 300 m). Cloud
    edges are dimmer and hazier than the mask says; this prefers observations far from them.
``clear-probability``
    ``p_clear`` alone.
``sen12ms``
    The SEN12MS quality score (Schmitt et al. 2019; see :mod:`s2clouds.models.physical`):
    the cloud score (spectral brightness, moisture and snow (NDSI) tests) and the shadow
    score (dark NIR/SWIR pixels where the cloud mask, projected away from the sun for cloud
    heights of 200-4000 m, falls), ``min(1 - min(1, cloud / (2 x threshold)), 1 - shadow)``
    (the paper's cloud threshold and a shadow score of 0.5 both give 0.5), with the same
    distance factor to cloud and shadow pixels. The shadow zone is mapped once per scene
    from an overview (:func:`sen12ms_shadow_zone`, with the scene's sun angles or ones
    estimated from it), so windows need no shadow-reach halo. Needs no model (B02, B03, B04,
    B08; uses B01, B10, B11).

Add one with :func:`register_scorer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from s2clouds.registry import Registry

#: distance (m) from a cloud or shadow beyond which the distance factor is 1
DISTANCE_CAP_M = 300.0

ScoreFunction = Callable[..., np.ndarray]


#: a map of a whole scene that a scorer needs beyond its window (the ``sen12ms`` shadow
#: zone), computed once per scene by the composite: ``scene_map(scene) -> CoarseMask``
SceneMap = Callable[[Any], Any]


@dataclass(frozen=True)
class Scorer:
    """A registered scorer: ``function`` (see the module docstring), whether it needs the
    masker's probabilities, whether it looks ``distance_cap`` metres around each pixel, and
    ``scene_map`` for scorers that need a map of the whole scene (then the function is called
    with ``scene_map=`` that map over its window, (H, W) bool)."""

    name: str
    function: ScoreFunction
    needs_probabilities: bool
    uses_distance: bool
    description: str
    scene_map: SceneMap | None = None


#: the scorers by name (:func:`register_scorer`)
SCORERS: Registry[Scorer] = Registry("quality scorer")


def register_scorer(
    name: str,
    function: ScoreFunction,
    *,
    needs_probabilities: bool = True,
    uses_distance: bool = False,
    description: str = "",
    scene_map: SceneMap | None = None,
    replace: bool = False,
) -> Scorer:
    """Add the scorer ``name`` (a taken name is refused unless ``replace``)."""
    scorer = Scorer(name, function, needs_probabilities, uses_distance, description, scene_map)
    return SCORERS.register(name, scorer, replace=replace)


def get_scorer(name: str) -> Scorer:
    """The scorer ``name`` (:class:`~s2clouds.errors.UnknownNameError` listing the known)."""
    return SCORERS[name]


def list_scorers() -> list[Scorer]:
    """Every registered scorer, in registration order."""
    return SCORERS.values()


def flagged_distance(flag: np.ndarray, pixel_size: float, cap: float) -> np.ndarray:
    """Distance (m, float32) from each pixel to the nearest ``flag`` pixel, at most ``cap``."""
    if not flag.any():
        return np.full(flag.shape, cap, np.float32)
    from scipy import ndimage

    distance = ndimage.distance_transform_edt(~flag) * pixel_size
    return np.minimum(distance, cap).astype(np.float32)


def distance_factor(flag: np.ndarray, pixel_size: float, cap: float) -> np.ndarray:
    """``1 - 0.5 x max(0, 1 - d / cap)``: 0.5 on a flagged pixel, 1 from ``cap`` away."""
    if cap <= 0:
        return np.ones(flag.shape, np.float32)
    d = flagged_distance(flag, pixel_size, cap)
    return (1.0 - 0.5 * (1.0 - d / cap)).astype(np.float32)


def probability_score(
    image: np.ndarray,
    probs: np.ndarray,
    *,
    bands: Sequence[str],
    pixel_size: float,
    cap: float = DISTANCE_CAP_M,
) -> np.ndarray:
    """``probability`` scorer (see the module docstring): the clear probability times the
    distance factor."""
    clear = clear_probability_score(image, probs, bands=bands, pixel_size=pixel_size, cap=cap)
    flag = np.argmax(np.nan_to_num(probs, nan=0.0), axis=0) != 0
    return (clear * distance_factor(flag, pixel_size, cap)).astype(np.float32)


def clear_probability_score(
    image: np.ndarray,
    probs: np.ndarray,
    *,
    bands: Sequence[str],
    pixel_size: float,
    cap: float = DISTANCE_CAP_M,
) -> np.ndarray:
    """``clear-probability`` scorer: the masker's clear probability."""
    return np.clip(np.nan_to_num(probs[0], nan=0.0), 0.0, 1.0).astype(np.float32)


def sen12ms_model(bands: Sequence[str]) -> Any:
    """The physical SEN12MS model for ``bands`` (the ``sen12ms`` scorer's cloud and shadow
    scores)."""
    from s2clouds.models.physical import PhysicalModel

    return PhysicalModel.for_bands(bands)


def shadow_reach_m(zenith: float | None) -> float:
    """How far (m) a shadow lies from its cloud at most: the highest cloud (4000 m) times the
    tangent of the sun zenith (the nominal 35 degrees when unknown)."""
    from s2clouds.models.physical import CLOUD_HEIGHTS_M, NOMINAL_ZENITH

    z = NOMINAL_ZENITH if zenith is None else min(zenith, 80.0)
    return CLOUD_HEIGHTS_M[1] * math.tan(math.radians(z))


def cloud_shadow_zone(
    cloud: np.ndarray, pixel_size: float, sun: tuple[float, float] | None
) -> np.ndarray:
    """(H, W) bool: where the clouds of ``cloud`` (H, W) bool can cast shadow, along the sun
    azimuth for cloud heights of 200-4000 m (any direction when ``sun`` is None)."""
    from s2clouds.models.shadow_geometry import shadow_reach

    return shadow_reach(cloud, pixel_size, shadow_reach_m(sun[0] if sun else None), sun)


def sen12ms_shadow_zone(scene: Any) -> Any:
    """The ``sen12ms`` scorer's scene map: where the scene's clouds can cast shadow, mapped
    once from an overview of the whole scene (a :class:`~s2clouds.io.grid.CoarseMask`), with
    its sun angles (estimated from the overview when the metadata has none). Windows then
    need no halo as wide as the shadow reach, and the result does not depend on them."""
    from s2clouds.inference.window import REACH_OVERVIEW_PX, scene_overview, with_sun_angles
    from s2clouds.io.grid import CoarseMask

    model = sen12ms_model(scene.bands)
    selected = with_sun_angles(scene.select(model.bands), model)
    steps = max(0, math.ceil(math.log2(max(scene.grid.shape) / REACH_OVERVIEW_PX)))
    factor = 2**steps
    overview = scene_overview(selected, factor)
    resolution = scene.grid.metres_per_pixel * factor
    cloud = model.cloud_score(overview, resolution) >= model.threshold
    angles = selected.angles
    sun = (angles.sun_zenith, angles.sun_azimuth) if angles is not None else None
    return CoarseMask.of(cloud_shadow_zone(cloud, resolution, sun), factor)


def sen12ms_score(
    image: np.ndarray,
    probs: np.ndarray | None,
    *,
    bands: Sequence[str],
    pixel_size: float,
    cap: float = DISTANCE_CAP_M,
    sun: tuple[float, float] | None = None,
    scene_map: np.ndarray | None = None,
) -> np.ndarray:
    """``sen12ms`` scorer (see the module docstring). ``scene_map``: (H, W) bool, where the
    scene's clouds can cast shadow (:func:`sen12ms_shadow_zone`, the composite's way); without
    it the zone is projected from this image's own clouds along ``sun`` (zenith, azimuth
    degrees; None: any direction)."""
    model = sen12ms_model(bands)
    index = {b: i for i, b in enumerate(bands)}
    selected = image[[index[b] for b in model.bands]]
    score = model.cloud_score(selected, pixel_size)
    cloud = score >= model.threshold
    zone = scene_map if scene_map is not None else cloud_shadow_zone(cloud, pixel_size, sun)
    shadow = np.where(zone & ~cloud, model.darkness(selected), 0.0)
    quality = np.minimum(1.0 - np.minimum(1.0, score / (2 * model.threshold)), 1.0 - shadow)
    flag = cloud | (shadow >= 0.5)
    return np.clip(quality * distance_factor(flag, pixel_size, cap), 0, 1).astype(np.float32)


register_scorer(
    "probability",
    probability_score,
    uses_distance=True,
    description="masker's clear probability x distance to the nearest cloud/shadow (default)",
)
register_scorer(
    "clear-probability",
    clear_probability_score,
    description="masker's clear probability only",
)
register_scorer(
    "sen12ms",
    sen12ms_score,
    needs_probabilities=False,
    uses_distance=True,
    description="SEN12MS cloud and shadow scores (Schmitt et al. 2019) x distance; no model",
    scene_map=sen12ms_shadow_zone,
)
