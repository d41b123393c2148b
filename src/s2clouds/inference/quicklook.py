"""Quicklook PNG: true colour with the predicted mask overlaid, at most ~1024 px wide."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from s2clouds.io.scene import Scene
from s2clouds.io.write import atomic_path, check_writable
from s2clouds.viz import TRUE_COLOUR_BANDS


def _small_rgb(scene: Scene, factor: int) -> np.ndarray:
    """Reflectance (3, h, w) of the true-colour bands, decimated by ``factor``."""
    rgb_scene = scene.select(TRUE_COLOUR_BANDS)
    if factor == 1:
        return rgb_scene.read()
    if any(not s.files() for s in rgb_scene.sources):  # held in memory: decimate it
        return rgb_scene.read()[:, ::factor, ::factor]
    small = replace(
        rgb_scene, grid=rgb_scene.grid.at_resolution(rgb_scene.grid.resolution * factor)
    )
    return small.read()


def write_quicklook(scene: Scene, mask_path: Path, png_path: Path, *, max_size: int = 1024) -> Path:
    """Write ``png_path``: RGB of ``scene`` with the mask COG at ``mask_path`` overlaid."""
    import rasterio
    from rasterio.enums import Resampling

    from s2clouds.viz import overlay, rgb_quicklook

    png_path = Path(png_path)
    check_writable(png_path)
    factor = max(1, math.ceil(max(scene.grid.shape) / max_size))
    image = _small_rgb(scene, factor)
    with rasterio.open(mask_path) as ds:
        mask = ds.read(1, out_shape=image.shape[1:], resampling=Resampling.nearest)
    picture = overlay(rgb_quicklook(image, TRUE_COLOUR_BANDS), mask, alpha=0.45)
    from matplotlib.image import imsave  # no pyplot: the global backend is left alone

    with atomic_path(png_path) as tmp:
        imsave(tmp, picture, format="png")
    return png_path
