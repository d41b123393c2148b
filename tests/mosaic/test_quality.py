"""Quality scorers: the registry, the distance factor in metres, and window independence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2clouds.errors import UnknownNameError
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
    with pytest.raises(UnknownNameError, match="unknown quality scorer"):
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
        run_composite([str(p) for p in series], out, options)
        with rasterio.open(out) as ds:
            outs.append(ds.read())
    assert np.array_equal(outs[0], outs[1])


def test_sen12ms_score_has_a_shadow_term_under_the_projected_cloud() -> None:
    """A dark patch where the cloud's shadow falls (sun in the south: shadow to the north) is
    poor; the same dark surface elsewhere (a lake) stays clear."""
    image = np.full((4, 160, 160), 0.05, np.float32)
    image[3] = 0.3  # vegetation NIR
    image[:, 120:140, 40:60] = 0.7  # cloud
    image[:, 85:105, 40:60] = 0.02  # its shadow, 35 px (350 m) north
    image[:, 85:105, 110:130] = 0.02  # a lake: just as dark, no cloud to the south of it
    q = sen12ms_score(image, None, bands=BANDS, pixel_size=10.0, sun=(35.0, 180.0))
    assert q[130, 50] < 0.5 and q[95, 50] < 0.5
    assert q[95, 120] > 0.5
    assert get_scorer("sen12ms").scene_map is not None


def test_sen12ms_composite_avoids_shadow_and_is_window_independent(tmp_path: Path) -> None:
    from .conftest import write_tif

    rng = np.random.default_rng(0)
    clear = np.stack([np.full((96, 96), v) for v in (400, 700, 500, 3000)]).astype(np.float64)
    clear += rng.integers(0, 50, clear.shape)
    shaded = clear.copy()
    shaded[:, 70:90, 20:40] = 7000  # cloud
    shaded[:, 40:60, 20:40] = 200  # its shadow to the north
    paths = [
        write_tif(tmp_path / "a.tif", shaded.astype(np.uint16)),
        write_tif(tmp_path / "b.tif", (clear + 30).astype(np.uint16)),
    ]
    import rasterio

    for path, day in zip(paths, ("2021-06-01", "2021-06-11"), strict=True):
        with rasterio.open(path, "r+") as ds:
            ds.update_tags(ACQUISITION_DATE=day, SUN_ZENITH="35", SUN_AZIMUTH="180")
    outs = []
    for block in (32, 96):
        out = tmp_path / f"c{block}.tif"
        result = run_composite(
            [str(p) for p in paths],
            out,
            CompositeOptions(
                method="best", scorer="sen12ms", block=block, progress=False, quicklook=False
            ),
        )
        with rasterio.open(out) as ds:
            outs.append(ds.read())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert (outs[0][3, 40:60, 20:40] > 2000).all()  # the shadow came from the clear date
    # the shadowed date's 400 cloud and 400 shadow pixels are all poor (with the cloud term
    # alone the shadow, dark and far from bright, would count as clear)
    shaded_entry = next(e for e in result.summary_data["inputs"] if e["path"].endswith("a.tif"))
    assert shaded_entry["clear_pixels"] <= 96 * 96 - 800
