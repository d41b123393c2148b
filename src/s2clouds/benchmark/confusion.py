"""Streaming confusion matrices: pooled over a dataset, or one small matrix per image.

Counts are ``int64`` arrays ``(n, n)`` with **rows = truth, columns = prediction**. Pixels are
skipped (not counted) where ``valid`` is False, where the truth equals ``ignore_index`` or where
the prediction equals ``ignore_index``; the last case (a labelled pixel the masker left as no
data) is tallied in ``pred_ignored`` so that a masker's coverage stays visible.

Inputs are streamed in flat chunks of ``chunk_size`` pixels, so 10^9 pixels (e.g. a
``np.memmap`` of a whole test split) never need more than a chunk of extra memory. ``uint8``
(and ``bool``) inputs take a fast path: one ``np.bincount`` over ``truth << 8 | pred`` into a
256 x 256 histogram, from which the ``n x n`` block is read and any value that is neither a
class nor ``ignore_index`` is reported, with no separate validation pass.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from s2clouds.errors import BenchmarkError, LabelSchemeError, ShapeMismatchError

#: default pixels per chunk (4 Mi pixels: ~40 MB of temporaries on the fast path)
DEFAULT_CHUNK = 1 << 22
_BYTE_VALUES = 256


def _flat(array: np.ndarray) -> np.ndarray:
    """A 1-D view of ``array`` (a copy only when it is not contiguous)."""
    return array.reshape(-1)


def _as_label_array(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return arr.view(np.uint8)
    if arr.dtype.kind not in "iu":
        raise LabelSchemeError(
            f"{what} must hold integer class labels, got dtype {arr.dtype}; "
            "translate it with s2clouds.labels.to_canonical first"
        )
    return arr


def _chunks(size: int, chunk_size: int) -> Iterator[slice]:
    for start in range(0, size, chunk_size):
        yield slice(start, min(start + chunk_size, size))


@functools.lru_cache(maxsize=32)
def _known_byte_cells(n_classes: int, ignore_index: int | None) -> np.ndarray:
    """(256, 256) bool: cells of the byte histogram whose truth and prediction are allowed.

    Shared by every matrix with the same classes (one per image in per-image counting).
    """
    codes = np.arange(_BYTE_VALUES)
    known = (codes < n_classes) | (codes == ignore_index)
    cells = np.outer(known, known)
    cells.flags.writeable = False
    return cells


class ConfusionMatrix:
    """A mergeable, serialisable ``n x n`` confusion matrix filled chunk by chunk.

    ``n_classes``: classes are the integers ``0 .. n_classes-1``.
    ``ignore_index``: label value (in truth or prediction) that is never counted; ``None``
    to count every value (then any value outside the classes is an error).
    """

    def __init__(
        self,
        n_classes: int,
        ignore_index: int | None = 255,
        *,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        if n_classes < 1 or n_classes > _BYTE_VALUES - 1:
            raise BenchmarkError(f"n_classes must be 1-255, got {n_classes}")
        if ignore_index is not None and 0 <= ignore_index < n_classes:
            raise BenchmarkError(
                f"ignore_index {ignore_index} is one of the {n_classes} classes; "
                "choose a value outside 0..n_classes-1 (e.g. 255)"
            )
        if chunk_size < 1:
            raise BenchmarkError("chunk_size must be a positive number of pixels")
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self.chunk_size = chunk_size
        self.counts = np.zeros((n_classes, n_classes), dtype=np.int64)
        self.pred_ignored = 0

    # ------------------------------------------------------------------ counting
    def update(self, pred: Any, truth: Any, valid: Any = None) -> ConfusionMatrix:
        """Add pixels: ``pred`` and ``truth`` integer arrays of one shape (any shape, e.g.
        ``(H, W)`` or ``(N, H, W)``), ``valid`` an optional bool array of the same shape.

        Returns ``self`` so that calls chain.
        """
        p = _as_label_array(pred, "prediction")
        t = _as_label_array(truth, "truth")
        v = None if valid is None else np.asarray(valid, dtype=bool)
        self._check_shapes(p, t, v)
        p, t = _flat(p), _flat(t)
        vflat = None if v is None else _flat(v)
        use_bytes = p.dtype == np.uint8 and t.dtype == np.uint8
        for part in _chunks(p.size, self.chunk_size):
            vpart = None if vflat is None else vflat[part]
            if use_bytes:
                self._update_bytes(p[part], t[part], vpart)
            else:
                self._update_generic(p[part], t[part], vpart)
        return self

    @staticmethod
    def _check_shapes(p: np.ndarray, t: np.ndarray, v: np.ndarray | None) -> None:
        if p.shape != t.shape:
            raise ShapeMismatchError(
                f"prediction {p.shape} and truth {t.shape} differ in shape; "
                "resample or crop them onto one grid first"
            )
        if v is not None and v.shape != t.shape:
            raise ShapeMismatchError(
                f"valid mask {v.shape} does not match truth {t.shape}; pass one flag per pixel"
            )

    def _update_bytes(self, p: np.ndarray, t: np.ndarray, v: np.ndarray | None) -> None:
        code = t.astype(np.uint16)
        np.left_shift(code, 8, out=code)
        np.bitwise_or(code, p, out=code)
        n_invalid = 0
        if v is not None:
            # park invalid pixels in cell (255, 255) and take exactly that many back out
            invalid = ~v
            n_invalid = int(np.count_nonzero(invalid))
            np.copyto(code, np.uint16(0xFFFF), where=invalid)
        hist = np.bincount(code, minlength=_BYTE_VALUES * _BYTE_VALUES)
        hist = hist.reshape(_BYTE_VALUES, _BYTE_VALUES)
        hist[0xFF, 0xFF] -= n_invalid
        known_cells = _known_byte_cells(self.n_classes, self.ignore_index)
        if hist[~known_cells].any():
            self._raise_unknown(hist, known_cells)
        n = self.n_classes
        self.counts += hist[:n, :n]
        if self.ignore_index is not None and 0 <= self.ignore_index < _BYTE_VALUES:
            self.pred_ignored += int(hist[:n, self.ignore_index].sum())

    def _raise_unknown(self, hist: np.ndarray, known_cells: np.ndarray) -> None:
        truth_codes, pred_codes = np.nonzero(hist * ~known_cells)
        bad = sorted(set(truth_codes.tolist()) | set(pred_codes.tolist()))
        bad = [b for b in bad if not (b < self.n_classes or b == self.ignore_index)]
        self._raise_bad_values(bad)

    def _raise_bad_values(self, bad: list[int]) -> None:
        raise LabelSchemeError(
            f"label values {bad[:10]} are neither classes 0..{self.n_classes - 1} nor the "
            f"ignore value {self.ignore_index}; translate masks to one scheme "
            "(s2clouds.labels.to_canonical) before scoring"
        )

    def _update_generic(self, p: np.ndarray, t: np.ndarray, v: np.ndarray | None) -> None:
        p = p.astype(np.int64)
        t = t.astype(np.int64)
        keep = np.ones(t.shape, dtype=bool) if v is None else v.copy()
        if self.ignore_index is not None:
            truth_labelled = keep & (t != self.ignore_index)
            pred_missing = truth_labelled & (p == self.ignore_index)
            self.pred_ignored += int(
                np.count_nonzero(pred_missing & (t >= 0) & (t < self.n_classes))
            )
            keep = truth_labelled & ~pred_missing
        p, t = p[keep], t[keep]
        out_of_range = (p < 0) | (p >= self.n_classes) | (t < 0) | (t >= self.n_classes)
        if out_of_range.any():
            bad = np.unique(np.concatenate([p[out_of_range], t[out_of_range]]))
            self._raise_bad_values([int(b) for b in bad if not 0 <= b < self.n_classes])
        n = self.n_classes
        self.counts += np.bincount(t * n + p, minlength=n * n).reshape(n, n)

    # ------------------------------------------------------------------ algebra
    def _check_compatible(self, other: ConfusionMatrix) -> None:
        if not isinstance(other, ConfusionMatrix):
            raise BenchmarkError(f"cannot merge a confusion matrix with {type(other).__name__}")
        if other.n_classes != self.n_classes or other.ignore_index != self.ignore_index:
            raise BenchmarkError(
                f"cannot merge a {other.n_classes}-class matrix (ignore {other.ignore_index}) "
                f"into a {self.n_classes}-class one (ignore {self.ignore_index}); "
                "score every worker with the same protocol"
            )

    def copy(self) -> ConfusionMatrix:
        out = ConfusionMatrix(self.n_classes, self.ignore_index, chunk_size=self.chunk_size)
        out.counts = self.counts.copy()
        out.pred_ignored = self.pred_ignored
        return out

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add ``other``'s counts into this matrix (in place) and return it."""
        self._check_compatible(other)
        self.counts += other.counts
        self.pred_ignored += other.pred_ignored
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return self.copy().merge(other)

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return self.merge(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return (
            self.n_classes == other.n_classes
            and self.ignore_index == other.ignore_index
            and self.pred_ignored == other.pred_ignored
            and bool(np.array_equal(self.counts, other.counts))
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def total(self) -> int:
        """Number of pixels counted."""
        return int(self.counts.sum())

    def __repr__(self) -> str:
        return f"ConfusionMatrix(n_classes={self.n_classes}, total={self.total})"

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: ``n_classes``, ``ignore_index``, ``counts`` (nested lists)."""
        return {
            "n_classes": self.n_classes,
            "ignore_index": self.ignore_index,
            "counts": self.counts.tolist(),
            "pred_ignored": self.pred_ignored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfusionMatrix:
        """Inverse of :meth:`to_dict`."""
        try:
            out = cls(int(data["n_classes"]), data.get("ignore_index"))
            counts = np.asarray(data["counts"], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchmarkError(
                f"not a serialised confusion matrix ({exc}); use to_dict()"
            ) from exc
        return out._set_counts(counts, int(data.get("pred_ignored", 0)))

    @classmethod
    def from_counts(
        cls, counts: Any, ignore_index: int | None = 255, *, pred_ignored: int = 0
    ) -> ConfusionMatrix:
        """Wrap an existing ``(n, n)`` count array (rows truth, columns prediction)."""
        arr = np.asarray(counts, dtype=np.int64)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise BenchmarkError(f"counts must be a square (n, n) array, got shape {arr.shape}")
        return cls(arr.shape[0], ignore_index)._set_counts(arr, pred_ignored)

    def _set_counts(self, counts: np.ndarray, pred_ignored: int) -> ConfusionMatrix:
        if counts.shape != (self.n_classes, self.n_classes) or (counts < 0).any():
            raise BenchmarkError(
                f"counts must be a non-negative ({self.n_classes}, {self.n_classes}) array, "
                f"got shape {counts.shape}"
            )
        self.counts = counts.copy()
        self.pred_ignored = pred_ignored
        return self


class PerImageConfusion:
    """One small :class:`ConfusionMatrix` per image id, for per-image metrics.

    ``update(image_id, pred, truth, valid)`` adds into that image's matrix (several tiles of
    one image may be added separately). ``stack()`` gives ``(n_images, n, n)`` counts in
    insertion order, ready for the metric functions.
    """

    def __init__(self, n_classes: int, ignore_index: int | None = 255) -> None:
        self.n_classes = n_classes
        self.ignore_index = ignore_index
        self._images: dict[str, ConfusionMatrix] = {}
        ConfusionMatrix(n_classes, ignore_index)  # validates the arguments early

    def _matrix(self, image_id: str) -> ConfusionMatrix:
        if image_id not in self._images:
            self._images[image_id] = ConfusionMatrix(self.n_classes, self.ignore_index)
        return self._images[image_id]

    def update(self, image_id: str, pred: Any, truth: Any, valid: Any = None) -> ConfusionMatrix:
        """Add pixels of image ``image_id``; returns that image's matrix."""
        return self._matrix(str(image_id)).update(pred, truth, valid)

    def add(self, image_id: str, matrix: ConfusionMatrix) -> None:
        """Add an already counted matrix for ``image_id``."""
        self._matrix(str(image_id)).merge(matrix)

    @property
    def ids(self) -> list[str]:
        return list(self._images)

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._images

    def __getitem__(self, image_id: str) -> ConfusionMatrix:
        if image_id not in self._images:
            raise KeyError(f"no counts for image {image_id!r}")
        return self._images[image_id]

    def stack(self, ids: list[str] | None = None) -> np.ndarray:
        """Counts ``(n_images, n, n)`` int64 for ``ids`` (default: all, insertion order)."""
        chosen = self.ids if ids is None else ids
        if not chosen:
            return np.zeros((0, self.n_classes, self.n_classes), dtype=np.int64)
        return np.stack([self[i].counts for i in chosen])

    def pooled(self) -> ConfusionMatrix:
        """All images summed into one matrix."""
        out = ConfusionMatrix(self.n_classes, self.ignore_index)
        for matrix in self._images.values():
            out.merge(matrix)
        return out

    def merge(self, other: PerImageConfusion) -> PerImageConfusion:
        """Add ``other``'s images (in place); images present in both are summed."""
        for image_id, matrix in other._images.items():
            self.add(image_id, matrix)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_classes": self.n_classes,
            "ignore_index": self.ignore_index,
            "images": {i: m.to_dict() for i, m in self._images.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerImageConfusion:
        out = cls(int(data["n_classes"]), data.get("ignore_index"))
        for image_id, matrix in data.get("images", {}).items():
            out.add(image_id, ConfusionMatrix.from_dict(matrix))
        return out
