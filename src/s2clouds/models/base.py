"""What every cloud model looks like to the inference engine and the benchmark."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from s2clouds.errors import ModelError
from s2clouds.labels.schemes import CANONICAL_CLASSES

if TYPE_CHECKING:
    from s2clouds.io.scene import Scene

N_CLASSES = len(CANONICAL_CLASSES)  # 4: clear, thick cloud, thin cloud, cloud shadow


def fill_clear(probs: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``probs`` (K, H, W) float with every pixel of ``where`` (H, W) bool set to certain
    clear (1 for class 0, 0 for the others), in place: what every model gives no-data
    pixels. Returns ``probs``."""
    probs[:, where] = 0.0
    probs[0, where] = 1.0
    return probs


#: ``(overview (C, h, w) float32 reflectance in model band order, metres per overview pixel)``
#: -> ``(sun zenith, sun azimuth)`` in degrees
SunAngleEstimator = Callable[[np.ndarray, float], tuple[float, float]]
#: ``(the model's probabilities (4, h, w) on a scene overview, metres per overview pixel,
#: the scene's context)`` -> (h, w) bool: where a cloud of the scene can cast its shadow
ShadowReachMapper = Callable[[np.ndarray, float, "ModelContext"], np.ndarray]


#: metres per pixel a model assumes when the context does not say (``resolution`` None)
ASSUMED_RESOLUTION_M = 10.0

#: ``CloudModel.tile_size`` of a model that runs on tiles of the run's ``tile`` option (its
#: edge is the caller's choice, e.g. ``s2clouds predict --tile``)
RUN_TILE = 0


@dataclass(frozen=True)
class ModelContext:
    """The facts about a scene that models may use, built by one constructor per source:
    :meth:`of_scene` (inference), :meth:`of_meta` (dataset samples), or directly for arrays.

    ``resolution``: metres per pixel of the image the model sees; ``level``: ``"L1C"``,
    ``"L2A"``; ``sun_zenith``/``sun_azimuth``: degrees. None: unknown (models then assume
    their own default, e.g. :data:`ASSUMED_RESOLUTION_M`). ``scene_shadow_reach``: True when the engine constrains
    shadow with a map of the whole scene (:meth:`CloudModel.overview_shadow_reach`), so the
    model must not do it again within a window.
    Facts are read as attributes only (``context.resolution``), so that a misspelt one fails
    type checking; :meth:`known` gives the known facts as a dict.
    """

    resolution: float | None = None
    level: str | None = None
    sun_zenith: float | None = None
    sun_azimuth: float | None = None
    scene_shadow_reach: bool | None = None

    @classmethod
    def of_scene(cls, scene: Scene) -> ModelContext:
        """The context of an opened scene: its grid resolution (metres, also for a
        geographic CRS), level and sun angles, and whether the engine applies a scene-level
        shadow reach (``scene.priors``)."""
        angles = scene.angles
        return cls(
            resolution=float(scene.grid.metres_per_pixel),
            level=scene.level,
            sun_zenith=angles.sun_zenith if angles is not None else None,
            sun_azimuth=angles.sun_azimuth if angles is not None else None,
            scene_shadow_reach=True if "shadow_reach" in scene.priors else None,
        )

    @classmethod
    def of_meta(cls, meta: Mapping[str, Any]) -> ModelContext:
        """The context of a dataset sample from its ``meta`` (``resolution`` default 10 m)."""

        def number(key: str) -> float | None:
            return float(meta[key]) if meta.get(key) is not None else None

        return cls(
            resolution=float(meta.get("resolution") or ASSUMED_RESOLUTION_M),
            level=meta.get("level"),
            sun_zenith=number("sun_zenith"),
            sun_azimuth=number("sun_azimuth"),
        )

    def known(self) -> dict[str, Any]:
        """The known facts (those not None) by name, in field order."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


class CloudModel(ABC):
    """Base class of the cloud models: maps a reflectance stack to canonical class
    probabilities. Models subclass it for the defaults of the optional members; a model
    that does not (duck-typed) needs only what :class:`SupportsCloudModel` lists, and
    :func:`as_cloud_model` gives it the defaults.

    Every model has:

    ``name``; ``bands``: canonical band names the model needs, in the order it wants them.
    ``predict_proba(image, context)``: ``image`` is (C, H, W) float32 reflectance (0-1) in
    ``bands`` order, NaN where there is no data; returns (4, H, W) float32 probabilities of
    the canonical classes (clear, thick cloud, thin cloud, cloud shadow) that sum to 1.
    ``context`` is the scene's :class:`ModelContext` (resolution, level, sun angles).
    ``halo``: pixels of context the model needs around a window at 10 m.

    Optional members, with their defaults here:

    ``required_halo(context)``: pixels of context around a window for this scene (default
    ``halo``): the radius of the model's receptive field, so that a pixel's result does not
    depend on where the window around it was cut (``--block``).
    ``required_alignment(context)``: windows are read from rows and columns that are
    multiples of this (default 1), so that the model's internal grids (pooling, block means,
    sampled cells) fall on the same scene pixels whatever the block.
    ``tile_size``: the fixed input edge in pixels the engine cuts blocks into (overlapping,
    feathered tiles); None (the default): the model takes any size; :data:`RUN_TILE`: the
    run's tile option.
    ``estimate_sun_angles``: a :data:`SunAngleEstimator`, called once per scene on an
    overview when the scene has no sun angles; None (the default): the model needs none.
    ``internal_factor(context)``: the model first averages its input over factor x factor
    blocks (default 1): the engine may read the scene that much coarser instead (from
    overviews) and give the model ``context`` at that resolution.
    ``overview_shadow_reach``: None (the default), or for models that keep shadow only
    where a cloud can cast it, a :data:`ShadowReachMapper` that the engine calls once on an
    overview of a large scene; it then applies the map itself and sets
    ``context.scene_shadow_reach`` (no shadow halo per window).
    """

    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    @abstractmethod
    def bands(self) -> tuple[str, ...]: ...

    @property
    @abstractmethod
    def halo(self) -> int: ...

    @property
    def tile_size(self) -> int | None:
        return None

    #: a class attribute, so that a model may define it as a method
    estimate_sun_angles: SunAngleEstimator | None = None

    @property
    def overview_shadow_reach(self) -> ShadowReachMapper | None:
        return None

    def required_halo(self, context: ModelContext) -> int:
        return self.halo

    def required_alignment(self, context: ModelContext) -> int:
        return 1

    def internal_factor(self, context: ModelContext) -> int:
        return 1

    @abstractmethod
    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray: ...


@runtime_checkable
class SupportsCloudModel(Protocol):
    """What a duck-typed model must have (``isinstance`` checks the names only): ``name``,
    ``bands``, ``halo`` and ``predict_proba`` as on :class:`CloudModel`."""

    @property
    def name(self) -> str: ...

    @property
    def bands(self) -> tuple[str, ...]: ...

    @property
    def halo(self) -> int: ...

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray: ...


@dataclass(frozen=True)
class DuckModel(CloudModel):
    """A duck-typed ``model`` as a :class:`CloudModel`: its members where it has them, the
    defaults of :class:`CloudModel` where not."""

    model: SupportsCloudModel

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "estimate_sun_angles", getattr(self.model, "estimate_sun_angles", None)
        )

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.model.bands)

    @property
    def halo(self) -> int:
        return self.model.halo

    @property
    def tile_size(self) -> int | None:
        size: int | None = getattr(self.model, "tile_size", None)
        return size

    @property
    def overview_shadow_reach(self) -> ShadowReachMapper | None:
        mapper: ShadowReachMapper | None = getattr(self.model, "overview_shadow_reach", None)
        return mapper

    def required_halo(self, context: ModelContext) -> int:
        method = getattr(self.model, "required_halo", None)
        return int(method(context)) if method is not None else self.halo

    def required_alignment(self, context: ModelContext) -> int:
        method = getattr(self.model, "required_alignment", None)
        return int(method(context)) if method is not None else 1

    def internal_factor(self, context: ModelContext) -> int:
        method = getattr(self.model, "internal_factor", None)
        return int(method(context)) if method is not None else 1

    def predict_proba(self, image: np.ndarray, context: ModelContext) -> np.ndarray:
        return self.model.predict_proba(image, context)


def as_cloud_model(model: CloudModel | SupportsCloudModel) -> CloudModel:
    """``model`` when it is a :class:`CloudModel`, else a :class:`DuckModel` around it
    (:class:`~s2clouds.errors.ModelError` when it lacks a member of
    :class:`SupportsCloudModel`)."""
    if isinstance(model, CloudModel):
        return model
    if not isinstance(model, SupportsCloudModel):
        missing = [m for m in ("name", "bands", "halo", "predict_proba") if not hasattr(model, m)]
        raise ModelError(
            f"{type(model).__name__} is not a cloud model: it lacks {', '.join(missing)} "
            "(subclass s2clouds.models.base.CloudModel)"
        )
    return DuckModel(model)
