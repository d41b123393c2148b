"""Pseudo-labels on real imagery: canonical masks where several cloud maskers agree.

Each masker (a registered model name such as ``"ukis-csmask"`` or ``"physical"``, or any
:class:`~s2clouds.models.base.CloudModel` object) predicts class probabilities; its most
probable class is its vote. A pixel gets a label only where the votes satisfy the rule
(``"agree"``: every masker; ``"majority"``: more than half), else 255 (ignored in training).

Thick and thin cloud. Votes are compared as clear / cloud / cloud shadow, so a masker saying
thick cloud and one saying thin cloud agree on *cloud*. The label is thin cloud (2) only when
every masker that voted cloud said thin, otherwise thick cloud (1). The peer maskers
(ukis-csmask, s2cloudless, the physical scores) do not separate thin from thick and report all
cloud as thick, so with them pseudo-labels hold no thin cloud; thin cloud comes from the
synthetic samples (:mod:`s2clouds.datasets.synthetic`).

Shadow is labelled only where the rule holds for shadow (with ``"agree"``: every masker says
shadow). ``min_confidence``: a masker whose highest class probability is below it abstains at
that pixel (with ``"agree"`` the pixel becomes 255).

This module runs models, so it imports :mod:`s2clouds.models` and :mod:`s2clouds.inference`
(inside the functions that need them); it is a training-data builder, above the plain readers.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from s2clouds.bands import band_indices, canonical_band_names
from s2clouds.datasets.base import CloudDataset, Sample
from s2clouds.datasets.synthetic import as_scene
from s2clouds.errors import DatasetError, ModelError
from s2clouds.io.scene import Scene
from s2clouds.io.write import atomic_path
from s2clouds.labels.schemes import CLEAR, CLOUD_SHADOW, NODATA, THICK_CLOUD, THIN_CLOUD
from s2clouds.models.base import ModelContext

if TYPE_CHECKING:
    from s2clouds.models.base import CloudModel

#: ukis-csmask at the input's 10 m (its @native entry), as the shipped models' labels were
#: made: pseudo-labels keep the sharper 10 m cloud and shadow edges
DEFAULT_MASKERS = ("ukis-csmask@native", "physical")
CLOUD_VOTE = THICK_CLOUD  # the vote of thick and of thin cloud
#: canonical class -> vote class (clear, cloud, shadow); 255 (no data, abstain) elsewhere
VOTE_TABLE = np.full(256, NODATA, dtype=np.uint8)
VOTE_TABLE[[CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW]] = (
    CLEAR,
    CLOUD_VOTE,
    CLOUD_VOTE,
    CLOUD_SHADOW,
)
VOTE_CLASSES = (CLEAR, CLOUD_VOTE, CLOUD_SHADOW)
#: rule name -> smallest number of votes (out of n maskers) a class needs
RULES = {"agree": lambda n: n, "majority": lambda n: n // 2 + 1}


def resolve_maskers(maskers: Sequence[str | CloudModel], bands: Sequence[str]) -> list[CloudModel]:
    """Model objects for ``maskers`` (names are built for ``bands`` by the model registry)."""
    from s2clouds.models.registry import get_model

    if len(maskers) < 2:
        raise ModelError(
            f"pseudo-labels need at least two maskers to compare, got {len(maskers)}; "
            f"e.g. maskers={DEFAULT_MASKERS}"
        )
    return [get_model(m, bands) if isinstance(m, str) else m for m in maskers]


def masker_vote(
    model: CloudModel,
    image: np.ndarray,
    bands: Sequence[str],
    context: ModelContext,
    min_confidence: float | None,
) -> np.ndarray:
    """One masker's canonical mask (H, W) uint8 on ``image`` (C, H, W) reflectance in ``bands``.

    255 where the image has no data, and where the masker's highest probability is below
    ``min_confidence`` (when given).
    """
    from s2clouds.inference.window import predict_array, probabilities_to_mask

    own = image[band_indices(bands, model.bands)]
    probs = predict_array(model, own, context)
    mask = probabilities_to_mask(probs, own)
    if min_confidence is not None:
        mask[probs.max(axis=0) < min_confidence] = NODATA
    return mask


def combine_votes(masks: Sequence[np.ndarray], rule: str = "agree") -> np.ndarray:
    """Canonical mask (H, W) uint8 from the maskers' canonical masks under ``rule``.

    Votes are clear / cloud (thick or thin) / shadow; a class wins where it has the votes the
    rule asks for; cloud is thin only when every cloud vote was thin. 255 elsewhere.
    """
    if rule not in RULES:
        raise DatasetError(f"unknown pseudo-label rule {rule!r}; use one of {', '.join(RULES)}")
    stack = np.stack([np.asarray(m, dtype=np.uint8) for m in masks])
    votes = VOTE_TABLE[stack]
    needed = RULES[rule](len(masks))
    out = np.full(stack.shape[1:], NODATA, dtype=np.uint8)
    for vote in VOTE_CLASSES:
        out[(votes == vote).sum(axis=0) >= needed] = vote
    cloud_votes = votes == CLOUD_VOTE
    all_thin = np.all((stack == THIN_CLOUD) | ~cloud_votes, axis=0)
    out[(out == CLOUD_VOTE) & all_thin] = THIN_CLOUD
    return out


def agreed_labels(
    models: Sequence[CloudModel],
    image: np.ndarray,
    bands: Sequence[str],
    context: ModelContext,
    rule: str,
    min_confidence: float | None,
) -> np.ndarray:
    """Canonical mask (H, W) uint8 of ``models`` combined under ``rule``; 255 also where any
    band of ``image`` (C, H, W) is NaN."""
    votes = [masker_vote(m, image, bands, context, min_confidence) for m in models]
    mask = combine_votes(votes, rule)
    mask[~np.all(np.isfinite(image), axis=0)] = NODATA
    return mask


def pseudo_label(
    image: np.ndarray,
    bands: Sequence[str],
    context: ModelContext | None = None,
    maskers: Sequence[str | CloudModel] = DEFAULT_MASKERS,
    rule: str = "agree",
    *,
    min_confidence: float | None = None,
) -> np.ndarray:
    """Canonical pseudo-label mask (H, W) uint8 where the ``maskers`` agree, 255 elsewhere.

    ``image``: (C, H, W) float reflectance (0-1), NaN = no data, bands named by ``bands``
    (every masker's bands must be among them). ``context``: scene facts for the models
    (``resolution`` in m, ``sun_zenith``/``sun_azimuth`` in degrees, ``level``); default 10 m.
    ``maskers``: registered model names or model objects (at least two). ``rule``:
    ``"agree"`` or ``"majority"``. ``min_confidence``: a masker abstains where its highest
    class probability is below this (0-1). See the module docstring for thin cloud.
    """
    names = canonical_band_names(bands)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] != len(names):
        raise DatasetError(
            f"image must be (C, H, W) with one plane per band ({len(names)}); got {image.shape}"
        )
    context = ModelContext(resolution=10.0) if context is None else context
    models = resolve_maskers(maskers, names)
    return agreed_labels(models, image, names, context, rule, min_confidence)


def agree_with_reference(mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``mask`` (H, W) uint8 canonical with 255 where it and ``reference`` disagree on cloud.

    ``reference`` is a canonical mask (e.g. human labels); only cloud (thick or thin) against
    not-cloud is compared, so references without a shadow class (On Cloud N: shadow is 0)
    keep the pseudo-label's shadows. Where ``reference`` is 255 the pseudo-label is kept.
    """
    if mask.shape != reference.shape:
        raise DatasetError(f"mask {mask.shape} and reference {reference.shape} differ in shape")
    known = (mask != NODATA) & (reference != NODATA)
    conflict = known & ((VOTE_TABLE[mask] == CLOUD_VOTE) != (VOTE_TABLE[reference] == CLOUD_VOTE))
    out = mask.copy()
    out[conflict] = NODATA
    return out


def labels_from_reference(mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Canonical labels (H, W) uint8 that take cloud from ``reference`` (human labels) and
    the rest from the pseudo-label ``mask``.

    Where the reference says cloud: thin cloud if ``mask`` says thin, else thick. Where it
    says not cloud: shadow if ``mask`` says shadow, else clear (references without a shadow
    class, such as On Cloud N, label shadow as 0). Where the reference is 255: ``mask``.
    """
    if mask.shape != reference.shape:
        raise DatasetError(f"mask {mask.shape} and reference {reference.shape} differ in shape")
    known = reference != NODATA
    cloud = known & (VOTE_TABLE[reference] == CLOUD_VOTE)
    out = mask.copy()
    out[known & ~cloud] = np.where(mask[known & ~cloud] == CLOUD_SHADOW, CLOUD_SHADOW, CLEAR)
    out[cloud] = np.where(mask[cloud] == THIN_CLOUD, THIN_CLOUD, THICK_CLOUD)
    return out


def masker_names(maskers: Sequence[str | CloudModel]) -> list[str]:
    """Names of maskers given as names or model objects."""
    return [m if isinstance(m, str) else m.name for m in maskers]


class PseudoLabelled(CloudDataset):
    """Real images with pseudo-labels from agreeing maskers (:func:`pseudo_label`).

    ``images``: paths (read with :func:`~s2clouds.io.scenes.read_scene`), :class:`Scene`
    objects, or (C, H, W) reflectance arrays whose band names are ``bands``. ``maskers``,
    ``rule``, ``min_confidence``: see :func:`pseudo_label`. ``resolution`` (m) and ``level``
    (``"L1C"``/``"L2A"``) are passed to :func:`read_scene` (for arrays, the pixel size,
    default 10 m). ``cache``: a folder; each image's pseudo-label is computed on first use
    and stored there as ``pseudo_<index>_<digest>.npz`` (the digest covers the image data and
    the settings, so changed inputs are recomputed).

    Sample: ``image`` (C, H, W) float32 reflectance of every band of the image (NaN = no
    data), ``mask`` = ``mask_canonical`` (H, W) uint8 canonical pseudo-labels (255 where the
    maskers disagree), ``valid`` (mask != 255), ``bands``, ``crs``/``transform`` of the image
    grid, ``meta``: ``id``, ``source``, ``maskers``, ``rule``, ``min_confidence``,
    ``resolution`` (m), sun angles (degrees, None when unknown), ``level``, ``labelled``
    (share of pixels with a label), ``cached`` (read from the cache).
    """

    name: ClassVar[str] = "pseudolabels"
    label_scheme: ClassVar[str] = "canonical"

    def __init__(
        self,
        images: Sequence[str | Path | Scene | np.ndarray],
        *,
        bands: Sequence[str] | None = None,
        maskers: Sequence[str | CloudModel] = DEFAULT_MASKERS,
        rule: str = "agree",
        min_confidence: float | None = None,
        cache: str | Path | None = None,
        resolution: float | None = None,
        level: str | None = None,
    ) -> None:
        if not images:
            raise DatasetError("PseudoLabelled needs at least one image; give images=[...]")
        if rule not in RULES:
            raise DatasetError(f"unknown pseudo-label rule {rule!r}; use one of {', '.join(RULES)}")
        self.scenes = [
            as_scene(image, bands=bands, resolution=resolution, level=level) for image in images
        ]
        self.maskers, self.rule, self.min_confidence = list(maskers), rule, min_confidence
        self.cache = Path(cache) if cache is not None else None
        self._models: dict[tuple[str, ...], list[CloudModel]] = {}

    @classmethod
    def detect(cls, path: Path) -> bool:
        """Never: pseudo-labelled sets are built from images, not detected on disk."""
        return False

    def __len__(self) -> int:
        return len(self.scenes)

    def _models_for(self, bands: tuple[str, ...]) -> list[CloudModel]:
        """The masker objects for images with ``bands`` (built once per band set)."""
        if bands not in self._models:
            self._models[bands] = resolve_maskers(self.maskers, bands)
        return self._models[bands]

    def _cache_file(self, index: int, image: np.ndarray, context: ModelContext) -> Path | None:
        """Cache path of image ``index``: its digest covers the data and the settings."""
        if self.cache is None:
            return None
        settings = {
            "maskers": masker_names(self.maskers),
            "rule": self.rule,
            "min_confidence": self.min_confidence,
            "context": dict(sorted(context.known().items())),
        }
        digest = hashlib.sha1(json.dumps(settings, default=str).encode())
        digest.update(np.ascontiguousarray(image).tobytes())
        return self.cache / f"pseudo_{index:05d}_{digest.hexdigest()[:16]}.npz"

    def _labels(self, index: int, scene: Scene, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """Pseudo-label mask (H, W) uint8 of image ``index``, and whether it came from the cache."""
        context = ModelContext.of_scene(scene)
        path = self._cache_file(index, image, context)
        cached = self._load(path) if path is not None else None
        if cached is not None:
            return cached, True
        models = self._models_for(scene.bands)
        mask = agreed_labels(models, image, scene.bands, context, self.rule, self.min_confidence)
        if path is not None:
            self._store(path, mask)
        return mask, False

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        """The cached mask at ``path``; None when there is none or it is damaged (it is then
        computed again and rewritten)."""
        if not path.is_file():
            return None
        try:
            with np.load(path) as stored:
                return np.asarray(stored["mask"])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None

    @staticmethod
    def _store(path: Path, mask: np.ndarray) -> None:
        """Write ``mask`` to ``path`` (.npz), creating the cache folder; atomic rename."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as partial, open(partial, "wb") as handle:
                np.savez_compressed(handle, mask=mask)
        except OSError as exc:
            raise DatasetError(
                f"cannot write the pseudo-label cache {path} ({exc}); give a writable cache folder"
            ) from exc

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        scene = self.scenes[index]
        image = scene.read()
        mask, cached = self._labels(index, scene, image)
        angles = scene.angles
        return {
            "image": image,
            "mask": mask,
            "mask_canonical": mask,
            "valid": mask != NODATA,
            "bands": scene.bands,
            "crs": scene.grid.crs,
            "transform": scene.grid.transform,
            "meta": {
                "id": f"{scene.product_id}_{index}",
                "source": scene.meta.get("path", scene.product_id),
                "maskers": masker_names(self.maskers),
                "rule": self.rule,
                "min_confidence": self.min_confidence,
                "resolution": scene.grid.resolution,
                "sun_zenith": angles.sun_zenith if angles else None,
                "sun_azimuth": angles.sun_azimuth if angles else None,
                "level": scene.level,
                "labelled": float(np.mean(mask != NODATA)),
                "cached": cached,
            },
        }

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "maskers": ", ".join(masker_names(self.maskers)),
            "rule": self.rule,
        }
