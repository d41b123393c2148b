"""Quality scorers: the registry, the distance factor in metres, and window independence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.errors import ModelError
from s2clouds.mosaic.composite import CompositeOptions, run_composite
from s2clouds.mosaic.quality import (
    distance_factor,
    get_scorer,
    list_scorers,
    probability_score,
    sen12ms_score,
)

from .conftest import BANDS


def test_registry_lists_the_builtin_scorers() -> None:
    names = {s.name for s in list_scorers()}
    assert {"probability", "clear-probability", "sen12ms"} <= names
    assert get_scorer("sen12ms").needs_probabilities is False
    with pytest.raises(ModelError, match="unknown quality scorer"):
        get_scorer("nope")


def test_distance_factor_is_in_metres_and_capped() -> None:
    flag = np.zeros((1, 50), bool)
    flag[0, 0] = True
    factor = distance_factor(flag, pixel_size=10.0, cap=300.0)
    assert factor[0, 0] == pytest.approx(0.5)
    assert factor[0, 10] == pytest.approx(1 - 0.5 * (1 - 100 / 300))
    assert (factor[0, 30:] == 1.0).all()
    assert (distance_factor(np.zeros((3, 3), bool), 10.0, 300.0) == 1.0).all()


def test_probability_score_prefers_clear_pixels_far_from_cloud() -> None:
    probs = np.zeros((4, 1, 40), np.float32)
    probs[0] = 1.0
    probs[:, 0, :3] = [[0.0], [1.0], [0.0], [0.0]]  # thick cloud in the first 3 pixels
    q = probability_score(np.zeros((4, 1, 40), np.float32), probs, bands=BANDS, pixel_size=10.0)
    assert q.dtype == np.float32 and q.shape == (1, 40)
    assert (q[0, :3] == 0).all() and q[0, 3] < q[0, 10] < q[0, 39] == 1.0


def test_sen12ms_score_calls_bright_pixels_bad() -> None:
    image = np.full((4, 32, 32), 0.05, np.float32)
    image[3] = 0.3
    image[:, :10, :10] = 0.7
    q = sen12ms_score(image, None, bands=BANDS, pixel_size=10.0)
    assert q[2, 2] < 0.5 < q[25, 25]
    assert ((q >= 0) & (q <= 1)).all()


def test_result_does_not_depend_on_the_block(series: list[Path], tmp_path: Path) -> None:
    outs = []
    for block in (16, 64):
        out = tmp_path / f"b{block}.tif"
        options = CompositeOptions(scorer="sen12ms", block=block, progress=False, distance_cap=0)
        run_composite([str(p) for p in series], out, options, announce=lambda _: None)
        with rasterio.open(out) as ds:
            outs.append(ds.read())
    assert np.array_equal(outs[0], outs[1])
