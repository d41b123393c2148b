"""Merge rules over a window stack: (T, C, H, W) values -> one (C, H, W) composite.

Every rule sees ``values`` (T, C, H, W) float32 (NaN = no data), ``quality`` (T, H, W) in
[0, 1] and ``good`` (T, H, W) bool, the clear observations (valid, quality >= the threshold).
Only good observations are used; pixels without one are NaN. The stack is in canonical order
(:mod:`s2clouds.mosaic.inputs`) and every tie goes to the earliest observation in it, so the
result does not depend on the order of the inputs.

``best``      the observation of highest quality (its whole spectrum, bit for bit)
``medoid``    the observation closest (Euclidean, over bands) to the per-band median of the
              good observations (a whole spectrum, bit for bit)
``median``    per-band median of the good observations
``percentile:P``  per-band P-th percentile (linear between order statistics)
``mean``      per-band mean weighted by quality
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from s2clouds.errors import S2CloudsError


@dataclass(frozen=True)
class Method:
    """A merge rule: ``name`` and, for ``percentile``, ``p`` (0-100)."""

    name: str
    p: float = 50.0

    @property
    def picks_one(self) -> bool:
        """Whether each pixel is one observation's spectrum (best, medoid)."""
        return self.name in ("best", "medoid")

    def __str__(self) -> str:
        return f"percentile:{self.p:g}" if self.name == "percentile" else self.name


def parse_method(text: str) -> Method:
    """``best``, ``medoid``, ``median``, ``mean`` or ``percentile:P`` (0 <= P <= 100)."""
    text = text.strip().lower()
    found = re.fullmatch(r"percentile:([0-9.]+)", text)
    if found:
        try:
            p = float(found[1])
        except ValueError:
            p = -1.0
        if not 0 <= p <= 100:
            raise S2CloudsError(f"--method {text}: the percentile must be from 0 to 100")
        return Method("percentile", p)
    if text not in ("best", "medoid", "median", "mean"):
        raise S2CloudsError(
            f"unknown --method {text!r}; use best, medoid, median, percentile:P or mean"
        )
    return Method(text, 50.0)


@dataclass(frozen=True)
class Merged:
    """``values`` (C, H, W) float32, NaN without a good observation; ``chosen`` (H, W) int16,
    the stack index of the picked observation (best/medoid) or -1; ``quality`` (H, W) float32,
    the picked observation's quality (others: the mean of the good ones), NaN without one;
    ``count`` (H, W) int32, good observations."""

    values: np.ndarray
    chosen: np.ndarray
    quality: np.ndarray
    count: np.ndarray


def percentile_of_good(values: np.ndarray, good: np.ndarray, p: float) -> np.ndarray:
    """Per-band ``p``-th percentile over the good observations of (T, C, H, W) ``values``:
    (C, H, W), NaN where none. Sort-based and vectorised (no per-pixel loops)."""
    masked = np.where(good[:, None], values, np.nan)
    ordered = np.sort(masked, axis=0)  # NaN last
    n = good.sum(axis=0)[None]  # (1, H, W)
    position = np.maximum(n - 1, 0) * (p / 100.0)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    frac = (position - low).astype(np.float32)
    take_low = np.take_along_axis(ordered, np.broadcast_to(low, (1, *ordered.shape[1:])), 0)[0]
    take_high = np.take_along_axis(ordered, np.broadcast_to(high, (1, *ordered.shape[1:])), 0)[0]
    out = take_low + (take_high - take_low) * frac[0]
    out[:, n[0] == 0] = np.nan
    return out.astype(np.float32)


def _pick(values: np.ndarray, index: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(C, H, W): the spectrum of observation ``index`` (H, W) at each pixel, NaN without one."""
    picked = np.take_along_axis(values, index[None, None].astype(np.intp), axis=0)[0]
    picked[:, count == 0] = np.nan  # take_along_axis returns a new array
    return picked


def merge(values: np.ndarray, quality: np.ndarray, good: np.ndarray, method: Method) -> Merged:
    """Apply ``method`` (see the module docstring) to one window stack."""
    count = good.sum(axis=0).astype(np.int32)
    none = count == 0
    if method.name == "best":
        index = np.argmax(np.where(good, quality, -np.inf), axis=0)
    elif method.name == "medoid":
        median = percentile_of_good(values, good, 50.0)
        distance = np.sum((values - median[None]) ** 2, axis=1, dtype=np.float64)
        index = np.argmin(np.where(good, distance, np.inf), axis=0)
    else:
        if method.name == "mean":
            weights = np.where(good, quality, 0.0).astype(np.float64)
            total = weights.sum(axis=0)
            filled = np.where(good[:, None], values, 0.0).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = (filled * weights[:, None]).sum(axis=0) / total
                # weights that are all zero (quality 0 but counted good): plain mean
                plain = filled.sum(axis=0) / np.maximum(count, 1)
            out = np.where(total > 0, out, plain).astype(np.float32)
            out[:, none] = np.nan
        else:
            p = 50.0 if method.name == "median" else method.p
            out = percentile_of_good(values, good, p)
        with np.errstate(invalid="ignore"):
            mean_q = np.where(good, quality, 0.0).sum(axis=0) / np.maximum(count, 1)
        mean_q[none] = np.nan
        chosen = np.full(count.shape, -1, np.int16)
        return Merged(out, chosen, mean_q.astype(np.float32), count)
    chosen = np.where(none, -1, index).astype(np.int16)
    picked_q = np.take_along_axis(quality, index[None].astype(np.intp), axis=0)[0].astype(
        np.float32
    )
    picked_q[none] = np.nan
    return Merged(_pick(values, index, count), chosen, picked_q, count)
