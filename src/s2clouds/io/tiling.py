"""Tile grids clamped at the scene edge, and feathered blending of overlapping tiles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from s2clouds.io.grid import Window


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` overlapping by ``overlap`` along one axis.

    The last tile is moved back so that it ends at the edge (clamped), so every tile is whole
    when ``length >= tile``; a shorter axis gets one tile covering it.
    """
    if tile <= overlap:
        raise ValueError(f"tile size {tile} must exceed the overlap {overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Window]:
    """Windows covering ``height`` x ``width`` with tiles of ``tile`` px overlapping ``overlap`` px."""
    return [
        Window(r, c, min(tile, height), min(tile, width))
        for r in tile_starts(height, tile, overlap)
        for c in tile_starts(width, tile, overlap)
    ]


def feather_weights(height: int, width: int, ramp: int) -> np.ndarray:
    """Weights ``(height, width)`` float32 rising linearly over ``ramp`` px from each border.

    Never zero, so pixels at the scene edge (covered by one tile only) keep their value.
    """

    def axis(n: int) -> np.ndarray:
        if ramp <= 0:
            return np.ones(n, dtype=np.float32)
        pos = np.arange(n, dtype=np.float32)
        dist = np.minimum(pos, n - 1 - pos) + 1
        return np.clip(dist / (ramp + 1), 1e-3, 1.0).astype(np.float32)

    return np.outer(axis(height), axis(width))


def blend_tiles(
    image: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    n_out: int,
    *,
    tile: int,
    overlap: int,
) -> np.ndarray:
    """Run ``predict`` on overlapping tiles of ``image`` (C, H, W) and blend the outputs.

    ``predict`` maps (C, h, w) to (n_out, h, w) float32. Overlapping outputs are averaged with
    :func:`feather_weights`, so no seams appear where tiles meet. Returns (n_out, H, W) float32.
    """
    _, height, width = image.shape
    if height <= tile and width <= tile:
        return predict(image).astype(np.float32, copy=False)
    acc = np.zeros((n_out, height, width), dtype=np.float32)
    total = np.zeros((height, width), dtype=np.float32)
    for window in tile_grid(height, width, tile, overlap):
        rows, cols = window.slices
        out = predict(image[:, rows, cols])
        weight = feather_weights(window.height, window.width, overlap // 2)
        acc[:, rows, cols] += out * weight
        total[rows, cols] += weight
    acc /= total
    return acc
