"""Block means and bilinear upsampling between a pixel grid and a coarser block grid, and
box means whose value at a pixel does not depend on where the array starts."""

from __future__ import annotations

import math

import numpy as np


def box_mean(values: np.ndarray, size: int, mode: str = "reflect") -> np.ndarray:
    """Mean (H, W) float32 of ``values`` (H, W) over ``size`` x ``size`` windows centred on
    each pixel (``mode``: how the edges are extended, as in ``scipy.ndimage``).

    Unlike ``scipy.ndimage.uniform_filter``, which keeps a running sum along each line (add
    the pixel entering, subtract the one leaving, so that rounding accumulates from the
    line's first pixel), every output pixel is a weighted sum of its own window in a fixed
    order (``correlate1d``). A pixel's mean is therefore bit-identical whatever the window
    of the scene it is computed in: ``--block`` and the cluster do not change masks.
    """
    from scipy import ndimage

    weights = np.full(size, 1.0 / size)
    rows = ndimage.correlate1d(values.astype(np.float32, copy=False), weights, axis=-1, mode=mode)
    return np.asarray(ndimage.correlate1d(rows, weights, axis=-2, mode=mode))


def block_mean(image: np.ndarray, factor: int, *, fill: float = 0.0) -> np.ndarray:
    """Average ``image`` (C, H, W) over ``factor`` x ``factor`` blocks, ignoring NaN.

    Returns (C, ceil(H / factor), ceil(W / factor)) float32; partial blocks at the bottom and
    right edges average the pixels they have; blocks without any finite pixel get ``fill``
    (NaN keeps them as no data).
    """
    if factor == 1:
        return np.nan_to_num(image.astype(np.float32, copy=False), nan=fill)
    c, h, w = image.shape
    if h % factor == 0 and w % factor == 0 and np.isfinite(image).all():
        return _whole_block_mean(image, factor)
    hb, wb = math.ceil(h / factor), math.ceil(w / factor)
    total = np.zeros((c, hb, wb), dtype=np.float32)
    count = np.zeros((c, hb, wb), dtype=np.float32)
    # one strided view per offset within a block: O(pixels), no (C, hb, f, wb, f) temporary
    for dr in range(factor):
        for dc in range(factor):
            view = image[:, dr::factor, dc::factor].astype(np.float32, copy=False)
            finite = np.isfinite(view)
            rows, cols = view.shape[1:]
            total[:, :rows, :cols] += np.where(finite, view, 0.0)
            count[:, :rows, :cols] += finite
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.where(count > 0, mean, np.float32(fill)).astype(np.float32, copy=False)


def _whole_block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """:func:`block_mean` of an image without NaN whose sides are multiples of ``factor``:
    the same sums in the same order (so the same float32 values), without the counts."""
    total: np.ndarray | None = None
    for dr in range(factor):
        for dc in range(factor):
            view = image[:, dr::factor, dc::factor].astype(np.float32, copy=False)
            total = view + np.float32(0.0) if total is None else total + view
    assert total is not None
    return total / np.float32(factor * factor)


def _linear_taps(n_out: int, n_in: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices (lower, upper) and upper weights for 1-D pixel-centre interpolation.

    Output pixel ``j`` sits at block coordinate ``(j + 0.5) / factor - 0.5``, i.e.
    ``(2 j + 1 - factor) / (2 factor)``; positions outside the first and last block centres
    are clamped (edge values repeat). See :func:`centre_taps`.
    """
    numerators = 2 * np.arange(n_out, dtype=np.int64) + 1 - factor
    return centre_taps(numerators, 2 * factor, n_in)


def centre_taps(
    numerators: np.ndarray, denominator: int, n_in: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (lower, upper) (N,) and upper weights (N,) float32 for linear interpolation
    at positions ``numerators / denominator`` (integers (N,), in units of input samples)
    between ``n_in`` samples, clamped to the first and last.

    The weight is the position's exact phase ``(numerator mod denominator) / denominator``,
    so it depends only on the phase, never on how far the position is from the array's
    start (``float32(position) - lower`` loses bits as the position grows): an output
    pixel gets bit-identical weights whatever window of a scene it is computed in.
    """
    lower = np.floor_divide(numerators, denominator)
    phase = numerators - lower * denominator
    weight = phase.astype(np.float32) / np.float32(denominator)
    before, after = lower < 0, lower >= n_in - 1
    lower = np.clip(lower, 0, n_in - 1).astype(np.intp)
    weight[before | after] = 0.0
    upper = np.minimum(lower + 1, n_in - 1)
    return lower, upper, weight


def upsample_bilinear(planes: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of block values (K, h, w) back to the pixel grid (K, H, W) float32.

    Block ``i`` of :func:`block_mean` is centred on pixel ``i * factor + (factor - 1) / 2``;
    the interpolation honours that (pixel-centre alignment) and clamps at the edges.
    """
    planes = planes.astype(np.float32, copy=False)
    if factor == 1:
        return planes[:, : shape[0], : shape[1]]
    r0, r1, wr = _linear_taps(shape[0], planes.shape[1], factor)
    c0, c1, wc = _linear_taps(shape[1], planes.shape[2], factor)
    return _lerp_take(_lerp_take(planes, r0, r1, wr[:, None], 1), c0, c1, wc, 2)


def _lerp_take(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, weight: np.ndarray, axis: int
) -> np.ndarray:
    """``values[low] + (values[high] - values[low]) * weight`` along ``axis``, in place on
    the taken copies (float32)."""
    out = np.take(values, low, axis=axis)
    step = np.take(values, high, axis=axis)
    step -= out
    step *= weight
    out += step
    return out
