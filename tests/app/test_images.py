"""The app's image helpers: expression views, stretches, where to label next."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("yaml")

from s2clouds.app.images import (  # noqa: E402
    least_certain_region,
    load_image,
    view_channels,
    view_stretch,
)
from s2clouds.app.project import ViewSpec, load_project  # noqa: E402


def test_expression_views_divide_safely_and_stretch_per_image(synthetic_project: Path) -> None:
    image = load_image(load_project(synthetic_project).image("scene"))
    view = ViewSpec("ratio", "ratio", ("B02", "B04"), "B04 / (B02 - B02) + -B02 * 2")
    values = view_channels(image, view, slice(None), slice(None))
    assert values.shape == (1, 64, 64) and np.all(np.isnan(values))  # x / 0 is no data
    ndvi = ViewSpec("ndvi", "ndvi", ("B04", "B08"), "(B08 - B04) / (B08 + B04)")
    lo, hi = view_stretch(image, ndvi, 2, 98)[0]
    assert -1 <= lo < hi <= 1
    assert view_stretch(image, ndvi, 2, 98) is view_stretch(image, ndvi, 2, 98)  # cached


def test_the_least_certain_block_avoids_labelled_and_empty_blocks() -> None:
    confidence = np.ones((128, 128), np.float32)
    confidence[0:16, 0:16] = 0.0  # least certain, but labelled
    confidence[16:32, 96:112] = 0.2  # next least certain
    confidence[112:128, 0:16] = 0.1  # less certain still, but no data
    scribbles = np.full((128, 128), 255, np.uint8)
    scribbles[0:16, 0:16] = 1
    valid = np.ones((128, 128), bool)
    valid[112:128, 0:16] = False
    region = least_certain_region(confidence, scribbles, valid)
    assert region == {"row": 16, "col": 96, "height": 16, "width": 16}
    assert least_certain_region(confidence, scribbles, np.zeros_like(valid)) is None
