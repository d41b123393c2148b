"""Merge rules on small stacks, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from s2clouds.errors import OptionError, RegistryError, S2CloudsError, UnknownNameError
from s2clouds.mosaic.merge import (
    RULES,
    Method,
    merge,
    parse_method,
    percentile_of_good,
    rank_images,
    register_rule,
)


def _stack(seed: int = 0, t: int = 6, c: int = 3, h: int = 5, w: int = 4):
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 1000, size=(t, c, h, w)).astype(np.float32)
    quality = rng.random((t, h, w)).astype(np.float32)
    good = quality >= 0.4
    return values, quality, good


def test_percentile_matches_numpy_over_good_observations() -> None:
    values, _, good = _stack()
    for p in (0, 25, 50, 90, 100):
        got = percentile_of_good(values, good, p)
        for i in range(values.shape[2]):
            for j in range(values.shape[3]):
                sel = good[:, i, j]
                if not sel.any():
                    assert np.isnan(got[:, i, j]).all()
                    continue
                expected = np.percentile(values[sel, :, i, j], p, axis=0)
                np.testing.assert_allclose(got[:, i, j], expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["best", "medoid"])
def test_picking_rules_return_one_observation_and_its_index(name: str) -> None:
    values, quality, good = _stack(1)
    merged = merge(values, quality, good, Method(name))
    for i in range(values.shape[2]):
        for j in range(values.shape[3]):
            k = merged.chosen[i, j]
            if not good[:, i, j].any():
                assert k == -1 and np.isnan(merged.values[:, i, j]).all()
                continue
            assert good[k, i, j]
            assert np.array_equal(merged.values[:, i, j], values[k, :, i, j])
            if name == "best":
                assert quality[k, i, j] == quality[good[:, i, j], i, j].max()
            else:  # the good observation closest to the per-band median of the good ones
                spectra = values[good[:, i, j], :, i, j].astype(np.float64)
                centre = np.median(spectra, axis=0)
                distance = np.sum((values[k, :, i, j] - centre) ** 2)
                assert distance <= np.sum((spectra - centre) ** 2, axis=1).min() + 1e-9


def test_ties_go_to_the_earliest_observation() -> None:
    values = np.arange(3 * 1 * 1 * 1, dtype=np.float32).reshape(3, 1, 1, 1)
    quality = np.ones((3, 1, 1), np.float32)
    good = np.ones((3, 1, 1), bool)
    assert merge(values, quality, good, Method("best")).chosen[0, 0] == 0
    # medoid of {0, 1, 2}: 1 is the median itself; of {0, 2}: both equidistant -> the first
    assert merge(values, quality, good, Method("medoid")).chosen[0, 0] == 1
    good[1] = False
    assert merge(values, quality, good, Method("medoid")).chosen[0, 0] == 0


def test_weighted_mean_and_count() -> None:
    values, quality, good = _stack(2)
    quality[:, 0, 0] = np.where(good[:, 0, 0], 0.0, quality[:, 0, 0])  # good, zero weight
    merged = merge(values, quality, good, Method("mean"))
    assert np.array_equal(merged.count, good.sum(0))
    for i in range(values.shape[2]):
        for j in range(values.shape[3]):
            sel = good[:, i, j]
            if not sel.any():
                assert np.isnan(merged.values[:, i, j]).all()
                continue
            weights = quality[sel, i, j]
            if weights.sum() > 0:
                expected = (values[sel, :, i, j] * weights[:, None]).sum(0) / weights.sum()
            else:  # weights that are all zero: the plain mean of the good observations
                expected = values[sel, :, i, j].mean(0)
            np.testing.assert_allclose(merged.values[:, i, j], expected, rtol=1e-5)


def test_parse_method() -> None:
    assert parse_method("percentile:25") == Method("percentile", 25.0)
    assert str(parse_method("MEDIAN")) == "median"
    for bad in ("percentile:101", "mode", "percentile:x"):
        with pytest.raises(OptionError) as info:
            parse_method(bad)
        assert info.value.param == "method"


def test_ranked_picks_the_good_observation_of_the_best_ranked_image() -> None:
    values, quality, good = _stack(3)
    ranks = (3, 0, 5, 1, 4, 2)
    merged = merge(values, quality, good, Method("ranked"), ranks=ranks)
    order = sorted(range(len(ranks)), key=ranks.__getitem__)
    for i in range(values.shape[2]):
        for j in range(values.shape[3]):
            first = next((k for k in order if good[k, i, j]), -1)
            assert merged.chosen[i, j] == first
            if first >= 0:
                assert np.array_equal(merged.values[:, i, j], values[first, :, i, j])
    with pytest.raises(S2CloudsError, match="needs one image rank"):
        merge(values, quality, good, Method("ranked"))


def test_rank_images_by_share_of_poor_pixels() -> None:
    # poor shares 0.5, 0.0, 0.5, (no valid pixels), 0.25: ties keep the order, empty last
    assert rank_images([5, 10, 1, 0, 3], [10, 10, 2, 0, 4]) == (2, 0, 3, 4, 1)


def test_rules_are_a_registry() -> None:
    assert {"best", "medoid", "ranked", "median", "percentile", "mean"} <= set(RULES)
    assert RULES["ranked"].ranks_images and RULES["ranked"].picks_one
    assert parse_method("ranked") == Method("ranked") and Method("ranked").ranks_images
    with pytest.raises(OptionError, match="takes no parameter"):
        parse_method("ranked:3")
    with pytest.raises(UnknownNameError, match="available: best, medoid, ranked, median, perc"):
        parse_method("mode")
    with pytest.raises(UnknownNameError, match="did you mean 'median'"):
        parse_method("medain")
    with pytest.raises(RegistryError, match="registered twice"):
        register_rule(RULES["best"])
    assert register_rule(RULES["best"], replace=True) is RULES["best"]
