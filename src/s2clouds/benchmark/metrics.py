"""Accuracy metrics computed from confusion counts, each with a named reduction.

Every function takes counts ``(..., n, n)`` int64 (rows = truth, columns = prediction): one
matrix ``(n, n)``, a stack of per-image matrices ``(m, n, n)``, a :class:`ConfusionMatrix` or a
:class:`PerImageConfusion` (its stack). Leading axes are kept, so per-image metrics are one
call on a stack.

Reductions over classes (``reduction=``):

``"none"``   one value per class, shape ``(..., n)``
``"micro"``  pooled over classes: sum of numerators over sum of denominators (for a
             single-label confusion matrix micro recall = micro precision = micro F1 = OA)
``"macro"``  unweighted mean over the classes whose value is defined

Reductions over images (:func:`reduce_images`): ``"median"`` or ``"mean"`` of per-image values.

**0/0 is NaN, never 0 and never 1.** A class with no truth pixels has an undefined recall
(producer's accuracy); a class never predicted has an undefined precision (user's accuracy).
Undefined values are *left out* of macro means, of :func:`average_accuracy` and of the median
and mean across images (and their count is reported by :func:`defined_count`); a result with
nothing defined is NaN. :func:`balanced_overall_accuracy` is NaN when either of its two rates is
undefined. No warnings are raised for 0/0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from s2clouds.benchmark.confusion import BenchmarkError, ConfusionMatrix, PerImageConfusion

ClassReduction = Literal["none", "micro", "macro"]
ImageReduction = Literal["median", "mean"]
CLASS_REDUCTIONS = ("none", "micro", "macro")
IMAGE_REDUCTIONS = ("median", "mean")
NEGATIVE, POSITIVE = 0, 1


def as_counts(confusion: Any) -> np.ndarray:
    """Counts ``(..., n, n)`` int64 from a matrix, a per-image collection or an array."""
    if isinstance(confusion, ConfusionMatrix):
        return confusion.counts
    if isinstance(confusion, PerImageConfusion):
        return confusion.stack()
    arr = np.asarray(confusion)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise BenchmarkError(
            f"confusion counts must have shape (..., n, n), got {arr.shape}; "
            "rows are truth and columns prediction"
        )
    if arr.dtype.kind not in "iu":
        raise BenchmarkError(f"confusion counts must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def safe_divide(numerator: Any, denominator: Any) -> np.ndarray:
    """``numerator / denominator`` as float64, NaN where the denominator is 0 (no warning)."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def nan_mean(values: Any, axis: int = -1) -> np.ndarray:
    """Mean of the defined (non-NaN) values along ``axis``; NaN where none is defined."""
    arr = np.asarray(values, dtype=np.float64)
    defined = ~np.isnan(arr)
    return safe_divide(np.where(defined, arr, 0.0).sum(axis=axis), defined.sum(axis=axis))


def tp_fp_fn(confusion: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives per class, each ``(..., n)``."""
    counts = as_counts(confusion)
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    fn = counts.sum(axis=-1) - tp
    fp = counts.sum(axis=-2) - tp
    return tp, fp, fn


def _reduce(numerator: np.ndarray, denominator: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return safe_divide(numerator, denominator)
    if reduction == "micro":
        return safe_divide(numerator.sum(axis=-1), denominator.sum(axis=-1))
    if reduction == "macro":
        return nan_mean(safe_divide(numerator, denominator), axis=-1)
    raise BenchmarkError(f"unknown class reduction {reduction!r}; use one of {CLASS_REDUCTIONS}")


def producers_accuracy(confusion: Any, reduction: ClassReduction = "none") -> np.ndarray:
    """Producer's accuracy (recall, TPR): ``TP / (TP + FN)``, share of truth found."""
    tp, _, fn = tp_fp_fn(confusion)
    return _reduce(tp, tp + fn, reduction)


def users_accuracy(confusion: Any, reduction: ClassReduction = "none") -> np.ndarray:
    """User's accuracy (precision): ``TP / (TP + FP)``, share of predictions that are right."""
    tp, fp, _ = tp_fp_fn(confusion)
    return _reduce(tp, tp + fp, reduction)


recall = producers_accuracy
precision = users_accuracy


def omission_error(confusion: Any, reduction: ClassReduction = "none") -> np.ndarray:
    """Omission error ``FN / (TP + FN) = 1 - producer's accuracy``."""
    tp, _, fn = tp_fp_fn(confusion)
    return _reduce(fn, tp + fn, reduction)


def commission_error(confusion: Any, reduction: ClassReduction = "none") -> np.ndarray:
    """Commission error ``FP / (TP + FP) = 1 - user's accuracy``."""
    tp, fp, _ = tp_fp_fn(confusion)
    return _reduce(fp, tp + fp, reduction)


def f1_score(confusion: Any, reduction: ClassReduction = "none") -> np.ndarray:
    """F1 ``2 TP / (2 TP + FP + FN)`` (harmonic mean of PA and UA)."""
    tp, fp, fn = tp_fp_fn(confusion)
    return _reduce(2 * tp, 2 * tp + fp + fn, reduction)


def iou(confusion: Any, reduction: ClassReduction = "none") -> np.ndarray:
    """Intersection over union (Jaccard) ``TP / (TP + FP + FN)``."""
    tp, fp, fn = tp_fp_fn(confusion)
    return _reduce(tp, tp + fp + fn, reduction)


def overall_accuracy(confusion: Any) -> np.ndarray:
    """Overall accuracy: correctly labelled pixels over all counted pixels, shape ``(...)``."""
    counts = as_counts(confusion)
    return safe_divide(np.trace(counts, axis1=-2, axis2=-1), counts.sum(axis=(-2, -1)))


def average_accuracy(confusion: Any) -> np.ndarray:
    """Average accuracy (AA): mean producer's accuracy over the classes present in the truth
    (= macro recall; = scikit-learn's ``balanced_accuracy_score``), shape ``(...)``."""
    return producers_accuracy(confusion, "macro")


def balanced_overall_accuracy(confusion: Any) -> np.ndarray:
    """Balanced overall accuracy of a **binary** task: ``(TPR + TNR) / 2``, shape ``(...)``.

    Needs ``(..., 2, 2)`` counts (negative first; see :func:`binary_counts`). NaN when the
    truth has no positive or no negative pixels (one of the two rates is 0/0).
    """
    counts = as_counts(confusion)
    if counts.shape[-1] != 2:
        raise BenchmarkError(
            f"balanced overall accuracy needs a binary (2 x 2) confusion, got {counts.shape[-1]} "
            "classes; collapse it with binary_counts(confusion, positive_classes)"
        )
    rates = producers_accuracy(counts, "none")
    return (rates[..., NEGATIVE] + rates[..., POSITIVE]) / 2


def cohens_kappa(confusion: Any) -> np.ndarray:
    """Cohen's kappa ``(p_o - p_e) / (1 - p_e)`` with chance agreement ``p_e`` from the row
    and column marginals, shape ``(...)``; NaN when nothing is counted or ``p_e = 1``."""
    counts = as_counts(confusion).astype(np.float64)
    total = counts.sum(axis=(-2, -1))
    observed = safe_divide(np.trace(counts, axis1=-2, axis2=-1), total)
    chance = safe_divide((counts.sum(axis=-1) * counts.sum(axis=-2)).sum(axis=-1), total**2)
    return safe_divide(observed - chance, 1.0 - chance)


def binary_counts(confusion: Any, positive_classes: Iterable[int]) -> np.ndarray:
    """Collapse ``(..., n, n)`` counts into a binary task ``(..., 2, 2)`` int64.

    Classes in ``positive_classes`` become index 1 (positive), every other class index 0
    (negative); e.g. ``binary_counts(c, [THICK_CLOUD, THIN_CLOUD])`` for the cloud task.
    """
    counts = as_counts(confusion)
    n = counts.shape[-1]
    positive = sorted({int(c) for c in positive_classes})
    if not positive or positive[0] < 0 or positive[-1] >= n:
        raise BenchmarkError(
            f"positive classes {positive} must be a non-empty subset of 0..{n - 1}"
        )
    membership = np.zeros((n, 2), dtype=np.int64)
    membership[:, NEGATIVE] = 1
    membership[positive, NEGATIVE] = 0
    membership[positive, POSITIVE] = 1
    return np.einsum("ai,...ab,bj->...ij", membership, counts, membership)


def binary_scores(binary: Any) -> dict[str, np.ndarray]:
    """Scores of the positive class of ``(..., 2, 2)`` counts, each shaped ``(...)``:
    ``pa`` (recall), ``ua`` (precision), ``boa``, ``f1``, ``iou``, ``oe`` (omission),
    ``ce`` (commission), ``oa``."""
    counts = as_counts(binary)
    return {
        "pa": producers_accuracy(counts)[..., POSITIVE],
        "ua": users_accuracy(counts)[..., POSITIVE],
        "boa": balanced_overall_accuracy(counts),
        "f1": f1_score(counts)[..., POSITIVE],
        "iou": iou(counts)[..., POSITIVE],
        "oe": omission_error(counts)[..., POSITIVE],
        "ce": commission_error(counts)[..., POSITIVE],
        "oa": overall_accuracy(counts),
    }


def reduce_images(values: Any, how: ImageReduction = "median") -> np.ndarray:
    """Median or mean over images (axis 0) of per-image values ``(m, ...)``, ignoring NaN
    (images where the metric is undefined); NaN where no image has a defined value."""
    arr = np.asarray(values, dtype=np.float64)
    if how == "mean":
        return nan_mean(arr, axis=0)
    if how != "median":
        raise BenchmarkError(f"unknown image reduction {how!r}; use one of {IMAGE_REDUCTIONS}")
    if arr.shape[0] == 0:
        return np.full(arr.shape[1:], np.nan)
    ordered = np.sort(arr, axis=0)  # NaN sorts last
    defined = (~np.isnan(arr)).sum(axis=0)
    low = np.clip((defined - 1) // 2, 0, None)
    high = np.clip(defined // 2, 0, None)
    lower = np.take_along_axis(ordered, np.expand_dims(low, 0), axis=0)[0]
    upper = np.take_along_axis(ordered, np.expand_dims(high, 0), axis=0)[0]
    return np.where(defined > 0, (lower + upper) / 2, np.nan)


def defined_count(values: Any) -> np.ndarray:
    """How many images (axis 0) have a defined (non-NaN) value."""
    return (~np.isnan(np.asarray(values, dtype=np.float64))).sum(axis=0)


def bin_shares(values: Any, low: float = 0.1, high: float = 0.9) -> dict[str, float]:
    """Share (0-1) of defined values in ``low`` ``x < low``, ``mid`` ``low <= x <= high`` and
    ``high`` ``x > high`` (the CloudSEN12 paper's bins); NaN shares when none is defined."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return {"low": float("nan"), "mid": float("nan"), "high": float("nan")}
    return {
        "low": float(np.mean(arr < low)),
        "mid": float(np.mean((arr >= low) & (arr <= high))),
        "high": float(np.mean(arr > high)),
    }
