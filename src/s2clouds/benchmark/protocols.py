"""Scoring protocols of the benchmark datasets, behind one interface.

A runner feeds each protocol, per masker and image::

    protocol = get_protocol("cloudsen12")
    protocol.update("fmask", pred, truth, valid, meta)   # (H, W) uint8 canonical masks
    rows = protocol.results()         # one row per (masker, image): counts + scores
    table = protocol.summary_rows()   # the protocol's summary per masker

``meta["id"]`` names the image (otherwise images are numbered per masker in update order).
Per-image rows carry the image's full confusion counts (columns ``n_<truth>_<pred>`` with
class codes), so :func:`protocol_from_rows` rebuilds a protocol, its summary and its
confusion matrices from a per-image CSV alone.

Protocols:

``cloudsen12``      Aybar et al. (2022): three binary tasks per image, PA / UA / BOA, median
                    BOA and PA/UA bins per masker, published values alongside.
``cmc``             Sentinel-2 Cloud Mask Catalogue: cloud and shadow tasks stratified by the
                    boolean tags of ``meta``; shadow skipped where ``meta["shadows_marked"]``
                    is False.
``spatiotemporal``  Spatio-temporal dataset: the centre 6 x 6 pixels of each timestamp,
                    per-class PA / UA / F1 / IoU, OA, AA, kappa.
``false_cloud``     Scenes known to be clear (SEN12MS's cloud-free mosaics): the share of
                    clear pixels a masker calls cloud or shadow, per image and pooled.
``sen12ms``         SEN12MS land cover maps: OA, AA and kappa (the paper's Tables 4-5).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from s2clouds.benchmark.confusion import BenchmarkError, ConfusionMatrix, PerImageConfusion
from s2clouds.benchmark.metrics import (
    average_accuracy,
    bin_shares,
    binary_counts,
    binary_scores,
    cohens_kappa,
    defined_count,
    f1_score,
    iou,
    overall_accuracy,
    producers_accuracy,
    reduce_images,
    users_accuracy,
)
from s2clouds.errors import LabelSchemeError, ShapeMismatchError
from s2clouds.labels import (
    CANONICAL_CLASSES,
    CLEAR,
    CLOUD_SHADOW,
    NODATA,
    THICK_CLOUD,
    THIN_CLOUD,
    LabelScheme,
    get_scheme,
)
from s2clouds.labels.landcover import LCCS_LAND_USE as _LCCS_LU
from s2clouds.labels.landcover import LCCS_LAND_USE_EVALUATION_MERGE
from s2clouds.registry import Registry

Row = dict[str, Any]
_COUNT_COLUMN = re.compile(r"^n_(\d+)_(\d+)$")
TAG_PREFIX = "tag_"


# --------------------------------------------------------------------------- binary tasks
@dataclass(frozen=True)
class BinaryTask:
    """A binary task over canonical classes: ``positive`` classes against all others."""

    name: str
    positive: frozenset[int]
    description: str


CLOUD_TASK = BinaryTask(
    "cloud", frozenset({THICK_CLOUD, THIN_CLOUD}), "thick and thin cloud vs clear and shadow"
)
SHADOW_TASK = BinaryTask("shadow", frozenset({CLOUD_SHADOW}), "cloud shadow vs everything else")
#: CloudSEN12's "valid" experiment: the positive class is *contaminated* pixels (thick cloud,
#: thin cloud or shadow) against clear, as in the authors' scoring code (experiment 03,
#: "target_CONTAMINATED", cloudsen12/figures figure10/data_creator.R). BOA is symmetric, PA
#: and UA are those of the contaminated class.
VALID_TASK = BinaryTask(
    "valid",
    frozenset({THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW}),
    "contaminated (cloud or shadow, positive) vs clear",
)
CLOUDSEN12_TASKS: tuple[BinaryTask, ...] = (CLOUD_TASK, SHADOW_TASK, VALID_TASK)
_TASKS_BY_NAME = {t.name: t for t in CLOUDSEN12_TASKS}


def tasks_for_scheme(scheme: str | LabelScheme) -> tuple[str, ...]:
    """CloudSEN12 tasks a masker with masks in ``scheme`` can be scored on: all three when
    the scheme has a shadow class, else only ``cloud`` (as the paper's '-' entries)."""
    produces = set(get_scheme(scheme).to_canonical.values())
    if CLOUD_SHADOW in produces:
        return tuple(t.name for t in CLOUDSEN12_TASKS)
    return (CLOUD_TASK.name,)


# --------------------------------------------------------------------------- published values
CLOUDSEN12_PUBLISHED_SOURCE = (
    "Aybar et al. (2022), CloudSEN12, a global dataset for semantic understanding of cloud and "
    "cloud shadow in Sentinel-2, Scientific Data 9:782, doi:10.1038/s41597-022-01878-2; "
    "technical validation on the test split, median per-image BOA"
)


@dataclass(frozen=True)
class PublishedScores:
    """Published median per-image BOA of one masker (None where the paper shows '-')."""

    masker: str
    names: tuple[str, ...]  # masker names (lower case, letters and digits) that match
    cloud: float | None
    shadow: float | None
    valid: float | None

    def median_boa(self, task: str) -> float:
        value = {"cloud": self.cloud, "shadow": self.shadow, "valid": self.valid}[task]
        return float("nan") if value is None else value


CLOUDSEN12_PUBLISHED: tuple[PublishedScores, ...] = (
    # the paper's UnetMobV2 is the model released as V1 (the TACO extra part's unetmobv2_v1)
    PublishedScores(
        "UnetMobV2",
        ("unetmobv2", "unetmobilenetv2", "cloudsen12", "unetmobv2v1"),
        0.920,
        0.890,
        0.913,
    ),
    PublishedScores("Fmask", ("fmask",), 0.841, 0.722, 0.809),
    PublishedScores("KappaMask L1C", ("kappamaskl1c", "kappamask"), 0.822, 0.738, 0.812),
    PublishedScores("s2cloudless", ("s2cloudless",), 0.786, None, None),
    PublishedScores("Sen2Cor", ("sen2cor", "scl"), 0.710, 0.507, 0.674),
    PublishedScores("QA60", ("qa60",), 0.582, None, None),
)


def _name_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


#: prefix of the maskers that are masks stored in the dataset (``layer:fmask``)
LAYER_MASKER_PREFIX = "layer:"


def published_median_boa(masker: str, task: str) -> float:
    """Published CloudSEN12 median BOA for a masker name (matched loosely; a stored layer
    ``layer:fmask`` as ``fmask``), or NaN."""
    if masker.lower().startswith(LAYER_MASKER_PREFIX):
        masker = masker[len(LAYER_MASKER_PREFIX) :]
    for entry in CLOUDSEN12_PUBLISHED:
        if _name_key(masker) in entry.names:
            return entry.median_boa(task)
    return float("nan")


# --------------------------------------------------------------------------- helpers
def _image_id(meta: Mapping[str, Any] | None, fallback: int) -> str:
    if meta is not None and meta.get("id") is not None:
        return str(meta["id"])
    return str(fallback)


def _is_tag(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _parse_bool(value: Any) -> bool:
    if _is_tag(value):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise BenchmarkError(f"tag value {value!r} is not a boolean (True/False)")


def _parse_tasks(value: Any) -> tuple[str, ...]:
    names = tuple(t for t in str(value).split(";") if t)
    unknown = [t for t in names if t not in _TASKS_BY_NAME]
    if unknown:
        raise BenchmarkError(f"unknown CloudSEN12 tasks {unknown}; known: {list(_TASKS_BY_NAME)}")
    return names


def centre_window(size: int, centre: int) -> slice:
    """Slice of the ``centre`` middle pixels of an axis of ``size`` (offset floored)."""
    if size < centre:
        raise ShapeMismatchError(
            f"an axis of {size} pixels is smaller than the {centre}-pixel centre window; "
            "pass the full patch (42 x 42 for the spatio-temporal dataset)"
        )
    start = (size - centre) // 2
    return slice(start, start + centre)


def count_columns(codes: Sequence[int]) -> list[str]:
    """Names of the per-image count columns, truth-major: ``n_<truth code>_<pred code>``."""
    return [f"n_{t}_{p}" for t in codes for p in codes]


def codes_from_columns(columns: Iterable[str]) -> list[int]:
    """Class codes, in order, from count column names (inverse of :func:`count_columns`)."""
    codes: list[int] = []
    for column in columns:
        match = _COUNT_COLUMN.match(column)
        if match and int(match.group(1)) not in codes:
            codes.append(int(match.group(1)))
    if not codes:
        raise BenchmarkError(
            "no count columns (n_<truth>_<pred>) found; the per-image CSV must come from "
            "Protocol.results()"
        )
    return codes


# --------------------------------------------------------------------------- base protocol
class Protocol(ABC):
    """Common interface: ``update`` per (masker, image), ``results`` and ``summary_rows``.

    ``classes`` maps each class code (label value after ``merge``) to its name; codes are
    counted in that order. ``merge`` maps extra label values onto class codes before
    counting (a table, e.g. the SEN12MS paper's joint classes).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    source: ClassVar[str]
    #: per-image score columns whose distributions the report plots
    per_image_scores: ClassVar[tuple[str, ...]]
    #: whether a high first per-image score is bad (false-cloud rates) rather than good
    higher_is_worse: ClassVar[bool] = False

    def __init__(
        self,
        classes: Mapping[int, str],
        *,
        scheme: str,
        ignore_index: int = NODATA,
        merge: Mapping[int, int] | None = None,
    ) -> None:
        self.classes = dict(classes)
        self.codes = list(self.classes)
        self.scheme = scheme
        self.ignore_index = ignore_index
        self.merge = dict(merge or {})
        self._lut = self._build_lut()
        self._images: dict[str, PerImageConfusion] = {}
        self._meta: dict[str, dict[str, dict[str, Any]]] = {}
        #: image id -> position of its sample in the dataset (filled by the runner)
        self.sample_index: dict[str, int] = {}

    # ---------------------------------------------------------------- label codes
    def _build_lut(self) -> np.ndarray | None:
        """Code -> class index lookup table over byte values, or None when codes are 0..n-1."""
        if self.codes == list(range(len(self.codes))) and not self.merge:
            return None
        if any(not 0 <= c <= 255 for c in [*self.codes, *self.merge, self.ignore_index]):
            raise BenchmarkError("class codes, merge keys and ignore_index must be 0-255")
        lut = np.full(256, -1, dtype=np.int16)
        lut[self.ignore_index] = self.ignore_index
        for index, code in enumerate(self.codes):
            lut[code] = index
        for source, target in self.merge.items():
            if target not in self.classes:
                raise BenchmarkError(
                    f"merge target {target} is not one of the classes {self.codes}"
                )
            lut[source] = self.codes.index(target)
        return lut

    def _encode(self, labels: np.ndarray) -> np.ndarray:
        """Class codes -> class indices 0..n-1 (uint8); ``ignore_index`` kept."""
        if self._lut is None:
            return labels
        arr = np.asarray(labels)
        if arr.dtype.kind not in "iub" or (arr.size and (arr.min() < 0 or arr.max() > 255)):
            raise LabelSchemeError(
                f"labels must be integer codes 0-255 for the {self.name} protocol; "
                f"known codes {self.codes} and {self.ignore_index} for no data"
            )
        mapped = self._lut[arr.astype(np.uint8)]
        if (mapped < 0).any():
            bad = np.unique(arr[mapped < 0])[:10].tolist()
            raise LabelSchemeError(
                f"label values {bad} are not classes of the {self.name} protocol "
                f"(codes {self.codes}, no data {self.ignore_index}); pass merge= to map them"
            )
        return mapped.astype(np.uint8)

    # ---------------------------------------------------------------- feeding
    def _prepare(
        self, pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Hook: select the scored pixels (e.g. a centre window). Default: all pixels."""
        return pred, truth, valid

    def _kept_meta(self, meta: Mapping[str, Any] | None) -> dict[str, Any]:
        """Hook: the parts of ``meta`` the protocol needs later (default: none)."""
        return {}

    def _per_image(self, masker: str) -> PerImageConfusion:
        if masker not in self._images:
            self._images[masker] = PerImageConfusion(len(self.codes), self.ignore_index)
            self._meta[masker] = {}
        return self._images[masker]

    def update(
        self,
        masker: str,
        pred: Any,
        truth: Any,
        valid: Any = None,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Score one image of ``masker``: ``pred`` and ``truth`` label arrays ``(H, W)`` in
        the protocol's classes (canonical uint8 unless stated), ``valid`` ``(H, W)`` bool or
        None, ``meta`` the sample's meta dict (``id`` names the image). Returns the image id.
        """
        pred_arr, truth_arr = np.asarray(pred), np.asarray(truth)
        valid_arr = None if valid is None else np.asarray(valid, dtype=bool)
        pred_arr, truth_arr, valid_arr = self._prepare(pred_arr, truth_arr, valid_arr)
        images = self._per_image(masker)
        image_id = _image_id(meta, len(images))
        images.update(image_id, self._encode(pred_arr), self._encode(truth_arr), valid_arr)
        self._meta[masker][image_id] = self._kept_meta(meta)
        return image_id

    # ---------------------------------------------------------------- reading back
    @property
    def maskers(self) -> list[str]:
        return list(self._images)

    @property
    def class_names(self) -> list[str]:
        return list(self.classes.values())

    def _require_masker(self, masker: str) -> PerImageConfusion:
        if masker not in self._images:
            raise BenchmarkError(f"no results for masker {masker!r}; scored: {self.maskers}")
        return self._images[masker]

    def confusion(self, masker: str) -> ConfusionMatrix:
        """All images of ``masker`` pooled, rows truth and columns prediction (class order)."""
        return self._require_masker(masker).pooled()

    def image_ids(self, masker: str) -> list[str]:
        return self._require_masker(masker).ids

    def results(self) -> list[Row]:
        """One row per (masker, image): ids, kept meta, counts ``n_<t>_<p>`` and scores."""
        rows: list[Row] = []
        columns = count_columns(self.codes)
        for masker, images in self._images.items():
            for image_id in images.ids:
                counts = images[image_id].counts
                meta = self._meta[masker][image_id]
                row: Row = {
                    "protocol": self.name,
                    "scheme": self.scheme,
                    "masker": masker,
                    "image_id": image_id,
                }
                row.update(self._meta_columns(masker, meta))
                row.update(zip(columns, counts.ravel().tolist(), strict=True))
                row.update(self._image_scores(masker, counts, meta))
                rows.append(row)
        return rows

    def _meta_columns(self, masker: str, meta: Mapping[str, Any]) -> Row:
        """Hook: meta written into the per-image rows (and read back by ``from_rows``)."""
        return {}

    @abstractmethod
    def _image_scores(self, masker: str, counts: np.ndarray, meta: Mapping[str, Any]) -> Row:
        """Per-image score columns from that image's ``(n, n)`` counts."""

    @abstractmethod
    def summary_rows(self) -> list[Row]:
        """The protocol's summary table, one row per masker (and task / class / stratum)."""

    def reference_rows(self) -> list[Row]:
        """Published values to print beside ours (empty when the protocol has none)."""
        return []

    def worst_images(self, masker: str, count: int) -> list[tuple[str, float]]:
        """The ``count`` worst ``(image id, score)`` of ``masker`` by the first per-image
        score (lowest first, or highest with :attr:`higher_is_worse`); NaN left out."""
        column = self.per_image_scores[0]
        scored = [
            (str(r["image_id"]), float(r[column]))
            for r in self.results()
            if r["masker"] == masker and not np.isnan(float(r[column]))
        ]
        scored.sort(key=lambda item: item[1], reverse=self.higher_is_worse)
        return scored[:count]

    # ---------------------------------------------------------------- rebuilding from rows
    @classmethod
    def _options_from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Hook: constructor keyword arguments recovered from the rows."""
        return {}

    def _restore_meta(self, masker: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """Hook: kept meta recovered from one row (inverse of ``_meta_columns``)."""
        return {}

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> Protocol:
        """Rebuild a protocol from :meth:`results` rows (or the same rows read from CSV)."""
        if not rows:
            raise BenchmarkError("no per-image rows to rebuild the benchmark from")
        protocol = cls(**cls._options_from_rows(rows))
        codes = codes_from_columns(rows[0].keys())
        if codes != protocol.codes:
            raise BenchmarkError(
                f"the rows count classes {codes} but the {cls.name} protocol uses {protocol.codes}"
            )
        columns = count_columns(codes)
        for row in rows:
            masker, image_id = str(row["masker"]), str(row["image_id"])
            try:
                counts = np.array([int(float(row[c])) for c in columns], dtype=np.int64)
            except (KeyError, TypeError, ValueError) as exc:
                raise BenchmarkError(f"row for {masker}/{image_id} has bad counts: {exc}") from exc
            n = len(codes)
            matrix = ConfusionMatrix.from_counts(counts.reshape(n, n), protocol.ignore_index)
            protocol._per_image(masker).add(image_id, matrix)
            protocol._meta[masker][image_id] = protocol._restore_meta(masker, row)
        return protocol


# --------------------------------------------------------------------------- CloudSEN12
class CloudSEN12Protocol(Protocol):
    """CloudSEN12 (Aybar et al. 2022): binary ``cloud``, ``shadow`` and ``valid`` tasks.

    Per image and task: PA (producer's accuracy of the positive class), UA (user's accuracy)
    and BOA. Rules for undefined values (as ``Metrics::recall``/``precision`` in the authors'
    scoring code): an image without positive truth pixels has PA = NaN and BOA = NaN and is
    left out of that task's PA bins and BOA median; UA is defined only where the masker
    predicted positives (UA = 0 when all of them are wrong, which counts in the low bin).

    Summary per masker and task: median (and mean) BOA over images with a defined BOA, and the
    share of images with PA / UA in ``low`` (x < 0.1), ``mid`` (0.1 <= x <= 0.9) and ``high``
    (x > 0.9), as fractions 0-1 of the images where that metric is defined.

    ``masker_tasks`` limits the tasks of maskers that cannot produce a class (see
    :func:`tasks_for_scheme`); by default every masker is scored on all three tasks.
    """

    name = "cloudsen12"
    title = "CloudSEN12 cloud / shadow / valid tasks"
    source = CLOUDSEN12_PUBLISHED_SOURCE
    per_image_scores = ("boa_cloud", "boa_shadow", "boa_valid")

    def __init__(self, *, masker_tasks: Mapping[str, Iterable[str]] | None = None) -> None:
        super().__init__(CANONICAL_CLASSES, scheme="canonical")
        self._masker_tasks: dict[str, tuple[str, ...]] = {}
        for masker, tasks in (masker_tasks or {}).items():
            self.set_tasks(masker, tasks)

    def set_tasks(self, masker: str, tasks: Iterable[str]) -> None:
        """Score ``masker`` only on ``tasks`` (names among cloud, shadow, valid)."""
        self._masker_tasks[masker] = _parse_tasks(";".join(tasks))

    def tasks_for(self, masker: str) -> tuple[BinaryTask, ...]:
        names = self._masker_tasks.get(masker, tuple(_TASKS_BY_NAME))
        return tuple(t for t in CLOUDSEN12_TASKS if t.name in names)

    def _meta_columns(self, masker: str, meta: Mapping[str, Any]) -> Row:
        return {"tasks": ";".join(t.name for t in self.tasks_for(masker))}

    def _restore_meta(self, masker: str, row: Mapping[str, Any]) -> dict[str, Any]:
        if "tasks" in row:
            self.set_tasks(masker, _parse_tasks(row["tasks"]))
        return {}

    def _image_scores(self, masker: str, counts: np.ndarray, meta: Mapping[str, Any]) -> Row:
        scored = {t.name for t in self.tasks_for(masker)}
        row: Row = {}
        for task in CLOUDSEN12_TASKS:
            scores = binary_scores(binary_counts(counts, task.positive))
            for key in ("pa", "ua", "boa"):
                value = float(scores[key]) if task.name in scored else float("nan")
                row[f"{key}_{task.name}"] = value
        return row

    def task_scores(self, masker: str, task: BinaryTask) -> dict[str, np.ndarray]:
        """Per-image ``pa``, ``ua``, ``boa`` ... arrays ``(n_images,)`` for one task."""
        stack = self._require_masker(masker).stack()
        return binary_scores(binary_counts(stack, task.positive))

    def summary_rows(self) -> list[Row]:
        rows: list[Row] = []
        for masker in self.maskers:
            for task in self.tasks_for(masker):
                scores = self.task_scores(masker, task)
                pa_bins, ua_bins = bin_shares(scores["pa"]), bin_shares(scores["ua"])
                rows.append(
                    {
                        "protocol": self.name,
                        "masker": masker,
                        "task": task.name,
                        "n_images": len(scores["boa"]),
                        "n_boa": int(defined_count(scores["boa"])),
                        "median_boa": float(reduce_images(scores["boa"], "median")),
                        "mean_boa": float(reduce_images(scores["boa"], "mean")),
                        "published_median_boa": published_median_boa(masker, task.name),
                        "n_pa": int(defined_count(scores["pa"])),
                        **{f"pa_{k}": v for k, v in pa_bins.items()},
                        "n_ua": int(defined_count(scores["ua"])),
                        **{f"ua_{k}": v for k, v in ua_bins.items()},
                    }
                )
        return rows

    def reference_rows(self) -> list[Row]:
        return [
            {
                "masker": entry.masker,
                "task": task.name,
                "median_boa": entry.median_boa(task.name),
                "source": "Aybar et al. 2022, test split",
            }
            for entry in CLOUDSEN12_PUBLISHED
            for task in CLOUDSEN12_TASKS
        ]


# --------------------------------------------------------------------------- Cloud Mask Catalogue
def _tag_group(stratum: str) -> str:
    """``all``, or the catalogue card's category of a tag (``surface type`` ... ``other``)."""
    from s2clouds.datasets.cmc import tag_group

    return "all" if stratum == "all" else tag_group(stratum)


class CloudMaskCatalogueProtocol(Protocol):
    """Cloud Mask Catalogue: cloud and shadow tasks, overall and stratified by tags.

    Every boolean entry of ``meta``, and of its ``meta["tags"]`` mapping (as the catalogue's
    reader nests them), is a tag (``tag_<name>`` columns); the summary has one row per masker,
    task and stratum: ``all`` and each tag in the order first seen (images where the tag is
    True), with ``n_images`` (0, and NaN scores, for a tag no scored image has). The
    shadow task skips images whose ``meta["shadows_marked"]`` is False (absent = marked).
    Pooled scores (``pa``, ``ua``, ``f1``, ``boa``) sum the pixels of the stratum (micro);
    ``median_boa`` is the median of per-image BOA.
    """

    name = "cmc"
    title = "Sentinel-2 Cloud Mask Catalogue, stratified by tags"
    source = "Francis et al. (2020), Sentinel-2 Cloud Mask Catalogue, doi:10.5281/zenodo.4172871"
    per_image_scores = ("boa_cloud", "boa_shadow")
    tasks: ClassVar[tuple[BinaryTask, ...]] = (CLOUD_TASK, SHADOW_TASK)
    SHADOWS_MARKED = "shadows_marked"

    def __init__(self) -> None:
        super().__init__(CANONICAL_CLASSES, scheme="canonical")

    def _kept_meta(self, meta: Mapping[str, Any] | None) -> dict[str, Any]:
        """Top-level booleans and those of ``meta["tags"]`` (nested wins on a clash)."""
        flat = dict(meta or {})
        nested = flat.pop("tags", None)
        if isinstance(nested, Mapping):
            flat.update(nested)
        return {str(k): bool(v) for k, v in flat.items() if _is_tag(v)}

    def _meta_columns(self, masker: str, meta: Mapping[str, Any]) -> Row:
        return {f"{TAG_PREFIX}{k}": v for k, v in meta.items()}

    def _restore_meta(self, masker: str, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k[len(TAG_PREFIX) :]: _parse_bool(v)
            for k, v in row.items()
            if k.startswith(TAG_PREFIX) and v not in (None, "")
        }

    def _scored(self, task: BinaryTask, meta: Mapping[str, Any]) -> bool:
        return task is not SHADOW_TASK or bool(meta.get(self.SHADOWS_MARKED, True))

    def _image_scores(self, masker: str, counts: np.ndarray, meta: Mapping[str, Any]) -> Row:
        row: Row = {}
        for task in self.tasks:
            scores = binary_scores(binary_counts(counts, task.positive))
            for key in ("pa", "ua", "f1", "boa"):
                ok = self._scored(task, meta)
                row[f"{key}_{task.name}"] = float(scores[key]) if ok else float("nan")
        return row

    def strata(self, masker: str) -> list[str]:
        """``all`` and every tag name seen for ``masker``, first seen first (``shadows_marked``
        excluded)."""
        names = {k: None for meta in self._meta[masker].values() for k in meta}
        return ["all", *(n for n in names if n != self.SHADOWS_MARKED)]

    def _stratum_rows(self, masker: str, task: BinaryTask, stratum: str) -> Row:
        ids = [
            i
            for i, meta in self._meta[masker].items()
            if self._scored(task, meta) and (stratum == "all" or meta.get(stratum, False))
        ]
        stack = binary_counts(self._images[masker].stack(ids), task.positive)
        pooled = binary_scores(stack.sum(axis=0))
        per_image = binary_scores(stack)
        return {
            "protocol": self.name,
            "masker": masker,
            "task": task.name,
            "group": _tag_group(stratum),
            "stratum": stratum,
            "n_images": len(ids),
            **{key: float(pooled[key]) for key in ("pa", "ua", "f1", "boa")},
            "median_boa": float(reduce_images(per_image["boa"], "median")),
        }

    def summary_rows(self) -> list[Row]:
        rows: list[Row] = []
        for masker in self.maskers:
            for task in self.tasks:
                rows.extend(self._stratum_rows(masker, task, s) for s in self.strata(masker))
        return rows


# --------------------------------------------------------------------------- spatio-temporal
SPATIOTEMPORAL_CENTRE = 6


class SpatioTemporalProtocol(Protocol):
    """Spatio-temporal dataset: only the centre ``centre x centre`` pixels (6 x 6) of each
    timestamp are labelled and scored.

    ``pred``: ``(..., H, W)`` labels (e.g. a 42 x 42 patch); ``truth``: the same shape, or
    one label per timestamp (``()`` or ``(...)``) that is broadcast over the centre window.
    ``classes``: ``"canonical"`` (canonical masks) or ``"spatiotemporal"`` (the dataset's own
    6 classes: clear, opaque cloud, thin cloud, haze, cloud shadow, snow).
    """

    name = "spatiotemporal"
    title = "Spatio-temporal S2 cloud dataset, centre 6 x 6 pixels per timestamp"
    source = "Spatio-temporal S2 cloud dataset (Zenodo, v2, 2024), centre-pixel labels"
    per_image_scores = ("oa",)

    def __init__(self, *, classes: str = "canonical", centre: int = SPATIOTEMPORAL_CENTRE) -> None:
        if classes not in {"canonical", "spatiotemporal"}:
            raise BenchmarkError("classes must be 'canonical' or 'spatiotemporal'")
        table = CANONICAL_CLASSES if classes == "canonical" else get_scheme(classes).classes
        super().__init__(table, scheme=classes)
        self.centre = centre

    def _crop(self, array: np.ndarray) -> np.ndarray:
        rows = centre_window(array.shape[-2], self.centre)
        cols = centre_window(array.shape[-1], self.centre)
        return array[..., rows, cols]

    def _prepare(
        self, pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if pred.ndim < 2:
            raise ShapeMismatchError(f"prediction must be (..., H, W), got shape {pred.shape}")
        pred = self._crop(pred)
        truth = self._centre_or_broadcast(truth, pred.shape)
        if valid is not None:
            valid = self._centre_or_broadcast(valid, pred.shape)
        return pred, truth, valid

    def _centre_or_broadcast(self, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """One value per timestamp ``(...)`` is spread over the window; ``(..., H, W)`` is
        cropped to it."""
        if array.shape == shape[:-2]:
            return np.broadcast_to(array[..., None, None], shape)
        if array.ndim < 2:
            raise ShapeMismatchError(
                f"labels of shape {array.shape} match neither one label per timestamp "
                f"{shape[:-2]} nor a patch (..., H, W)"
            )
        return self._crop(array)

    def _image_scores(self, masker: str, counts: np.ndarray, meta: Mapping[str, Any]) -> Row:
        return {"oa": float(overall_accuracy(counts))}

    @classmethod
    def _options_from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {"classes": str(rows[0].get("scheme", "canonical"))}

    def summary_rows(self) -> list[Row]:
        rows: list[Row] = []
        for masker in self.maskers:
            counts = self.confusion(masker).counts
            per_class = {
                "pa": producers_accuracy(counts),
                "ua": users_accuracy(counts),
                "f1": f1_score(counts),
                "iou": iou(counts),
            }
            for index, name in enumerate(self.class_names):
                rows.append(
                    {
                        "protocol": self.name,
                        "masker": masker,
                        "class": name,
                        "truth_pixels": int(counts[index].sum()),
                        **{k: float(v[index]) for k, v in per_class.items()},
                    }
                )
            rows.append(
                {
                    "protocol": self.name,
                    "masker": masker,
                    "class": "all",
                    "truth_pixels": int(counts.sum()),
                    "f1": float(f1_score(counts, "macro")),
                    "iou": float(iou(counts, "macro")),
                    "oa": float(overall_accuracy(counts)),
                    "aa": float(average_accuracy(counts)),
                    "kappa": float(cohens_kappa(counts)),
                }
            )
        return rows


# --------------------------------------------------------------------------- false cloud
#: per-image false-cloud rate above which an image counts as falsely clouded
FALSE_CLOUD_IMAGE_THRESHOLD = 0.01


def false_rates(counts: np.ndarray, predicted: Iterable[int]) -> np.ndarray:
    """Share of clear truth pixels predicted as one of the ``predicted`` class indices.

    ``counts``: ``(..., n, n)`` confusion counts (rows truth, canonical class order).
    Returns ``(...)`` float64 fractions 0-1, NaN where no truth pixel is clear.
    """
    counts = np.asarray(counts, dtype=np.float64)
    clear = counts[..., CLEAR, :]
    wrong = clear[..., sorted(predicted)].sum(axis=-1)
    total = clear.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, wrong / np.where(total > 0, total, 1), np.nan)


FALSE_CLASSES: dict[str, frozenset[int]] = {
    "false_cloud": frozenset({THICK_CLOUD, THIN_CLOUD}),
    "false_shadow": frozenset({CLOUD_SHADOW}),
    "false_any": frozenset({THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW}),
}


class FalseCloudProtocol(Protocol):
    """Scenes known to be clear (SEN12MS's cloud-free mosaics, whose cloudy patches experts
    removed): how often a masker calls cloud or shadow where there is none.

    Only clear truth pixels are counted (truth is clear or no data on such scenes; BOA would be
    NaN there, with no positive). Per image: ``false_cloud`` (share of clear pixels predicted
    thick or thin cloud), ``false_shadow`` and ``false_any``, fractions 0-1. Summary per
    masker: ``n_images``, pooled rates (every pixel of the masker's images), median and 90th
    percentile of the per-image false-cloud rate, and ``images_over_1pct``, the share of images
    with more than 1 % false cloud.
    """

    name = "false_cloud"
    title = "False clouds on scenes known to be clear"
    source = (
        "Schmitt et al. (2019), SEN12MS: cloud-free Sentinel-2 mosaics (Sections 3.1, 3.3); "
        "every detection is false"
    )
    per_image_scores = ("false_cloud", "false_shadow")
    higher_is_worse = True

    def __init__(self) -> None:
        super().__init__(CANONICAL_CLASSES, scheme="canonical")

    def _image_scores(self, masker: str, counts: np.ndarray, meta: Mapping[str, Any]) -> Row:
        return {k: float(false_rates(counts, v)) for k, v in FALSE_CLASSES.items()}

    def summary_rows(self) -> list[Row]:
        rows: list[Row] = []
        for masker in self.maskers:
            stack = self._images[masker].stack()
            per_image = false_rates(stack, FALSE_CLASSES["false_cloud"])
            defined = per_image[~np.isnan(per_image)]
            pooled = {k: float(false_rates(stack.sum(axis=0), v)) for k, v in FALSE_CLASSES.items()}
            rows.append(
                {
                    "protocol": self.name,
                    "masker": masker,
                    "n_images": len(per_image),
                    "clear_pixels": int(stack[:, CLEAR, :].sum()),
                    **pooled,
                    "median_image_false_cloud": float(reduce_images(per_image, "median")),
                    "p90_image_false_cloud": (
                        float(np.percentile(defined, 90)) if defined.size else float("nan")
                    ),
                    "images_over_1pct": (
                        float((defined > FALSE_CLOUD_IMAGE_THRESHOLD).mean())
                        if defined.size
                        else float("nan")
                    ),
                }
            )
        return rows


# --------------------------------------------------------------------------- SEN12MS land cover
#: LCCS land-use classes (code -> name), from the land-cover tables of ``s2clouds.labels``
LCCS_LAND_USE: dict[int, str] = {code: name.lower() for code, name in _LCCS_LU.classes.items()}
#: joint classes used for the paper's Tables 4-5 (open forests; herbaceous)
SEN12MS_PAPER_MERGE: dict[int, int] = dict(LCCS_LAND_USE_EVALUATION_MERGE)


class Sen12msLandCoverProtocol(Protocol):
    """SEN12MS land cover maps: OA, AA and Cohen's kappa (the paper's Tables 4-5).

    ``classes``: code -> name (default: LCCS land use); ``merge``: code -> code applied to
    prediction and truth before counting (e.g. :data:`SEN12MS_PAPER_MERGE`; merged-away codes
    leave the class list); ``ignore_index`` 255 is SEN12MS's no data. AA is the mean PA over
    classes present in the truth. The summary pools every pixel of a masker (as the paper pools
    its reference points) and adds the median per-image OA.
    """

    name = "sen12ms"
    title = "SEN12MS land cover: OA, AA, kappa"
    source = "Schmitt et al. (2019), SEN12MS, ISPRS Annals IV-2/W7, Tables 4-5"
    per_image_scores = ("oa", "kappa")

    def __init__(
        self,
        *,
        classes: Mapping[int, str] | None = None,
        merge: Mapping[int, int] | None = None,
        ignore_index: int = NODATA,
    ) -> None:
        table = dict(LCCS_LAND_USE if classes is None else classes)
        merge = dict(merge or {})
        kept = {code: name for code, name in table.items() if code not in merge}
        super().__init__(kept, scheme="lccs_land_use", ignore_index=ignore_index, merge=merge)

    def _image_scores(self, masker: str, counts: np.ndarray, meta: Mapping[str, Any]) -> Row:
        return {
            "oa": float(overall_accuracy(counts)),
            "aa": float(average_accuracy(counts)),
            "kappa": float(cohens_kappa(counts)),
        }

    @classmethod
    def _options_from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        codes = codes_from_columns(rows[0].keys())
        return {"classes": {c: LCCS_LAND_USE.get(c, f"class {c}") for c in codes}}

    def summary_rows(self) -> list[Row]:
        rows: list[Row] = []
        for masker in self.maskers:
            counts = self.confusion(masker).counts
            per_image_oa = overall_accuracy(self._images[masker].stack())
            rows.append(
                {
                    "protocol": self.name,
                    "masker": masker,
                    "n_images": len(self._images[masker]),
                    "n_pixels": int(counts.sum()),
                    "oa": float(overall_accuracy(counts)),
                    "aa": float(average_accuracy(counts)),
                    "kappa": float(cohens_kappa(counts)),
                    "median_image_oa": float(reduce_images(per_image_oa, "median")),
                }
            )
        return rows


# --------------------------------------------------------------------------- registry
#: protocol classes by name (and alias: ``catalogue`` -> ``cmc``, ...)
PROTOCOLS: Registry[type[Protocol]] = Registry("benchmark protocol")
for _protocol in (
    CloudSEN12Protocol,
    CloudMaskCatalogueProtocol,
    SpatioTemporalProtocol,
    FalseCloudProtocol,
    Sen12msLandCoverProtocol,
):
    PROTOCOLS.register(_protocol.name, _protocol)
for _alias, _name in {
    "cloud_mask_catalogue": "cmc",
    "catalogue": "cmc",
    "temporal": "spatiotemporal",
    "sen12ms_landcover": "sen12ms",
    "landcover": "sen12ms",
    "false_clouds": "false_cloud",
    "clear": "false_cloud",
}.items():
    PROTOCOLS.alias(_alias, _name)


def get_protocol(name: str, **options: Any) -> Protocol:
    """A fresh protocol by name (or alias), with its constructor ``options``
    (:class:`~s2clouds.errors.UnknownNameError` for an unknown name)."""
    return PROTOCOLS[name](**options)


def protocol_from_rows(rows: Sequence[Mapping[str, Any]]) -> Protocol:
    """Rebuild the protocol named in the rows' ``protocol`` column from per-image rows."""
    if not rows:
        raise BenchmarkError("the per-image table is empty; nothing to report")
    names = {str(r.get("protocol", "")) for r in rows}
    if len(names) != 1:
        raise BenchmarkError(
            f"per-image rows mix protocols {sorted(names)}; write one CSV per protocol"
        )
    return PROTOCOLS[names.pop()].from_rows(rows)
