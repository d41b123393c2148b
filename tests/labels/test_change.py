"""The change labeller: cloud, thin cloud, shadow and clear from a cloudy/clear pair."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from s2clouds.errors import BandError
from s2clouds.labels import NODATA
from s2clouds.labels.change import (
    CLEAR,
    SHADOW,
    THICK,
    THIN,
    ChangeRules,
    calibrate_cloud_albedo,
    change_labels,
    consistent_shadow,
    match_offsets,
    shift_mask,
    temporal_reference,
)


@pytest.fixture
def scene(maker):
    """(clear, cloudy, truth, bands) of the SEN12MS-CR fixture's synthetic pair."""
    pairs = maker("sen12mscr")
    clear, cloudy, truth = pairs.scene(np.random.default_rng(0))
    return clear.astype(np.float32), cloudy.astype(np.float32), truth, pairs.BANDS


def _core(mask: np.ndarray, region: tuple[slice, slice], margin: int = 3) -> np.ndarray:
    rows, cols = region
    return mask[rows.start + margin : rows.stop - margin, cols.start + margin : cols.stop - margin]


def test_labels_each_class_where_it_was_drawn(scene, maker) -> None:
    clear, cloudy, truth, bands = scene
    pairs = maker("sen12mscr")
    labels = change_labels(cloudy, clear, bands)
    assert labels.usable
    assert np.all(_core(labels.mask, pairs.CLOUD) == THICK)
    assert np.all(_core(labels.mask, pairs.CIRRUS) == THIN)
    dr, dc = pairs.SHADOW_OFFSET
    interior = ndimage.binary_erosion(truth == SHADOW, iterations=3)
    assert np.mean(labels.mask[interior] == SHADOW) > 0.95
    # clear where both dates agree, including the bright field; nothing labelled wrongly
    labelled = labels.mask != NODATA
    assert np.mean(labels.mask[labelled] == truth[labelled]) > 0.99
    assert np.mean(labels.mask == CLEAR) > 0.3
    assert labels.shadow_offset is not None
    assert abs(labels.shadow_offset[0] - dr) <= 2 and abs(labels.shadow_offset[1] - dc) <= 2


def test_edges_are_ignored(scene, maker) -> None:
    clear, cloudy, _, bands = scene
    rows, cols = maker("sen12mscr").CLOUD
    mask = change_labels(cloudy, clear, bands, ChangeRules(edge=2)).mask
    assert np.all(mask[rows.start, cols] == NODATA)  # the cloud's top edge row
    assert np.all(mask[rows.start - 1, cols] == NODATA)


def test_shadow_without_a_cloud_up_sun_is_not_labelled(scene) -> None:
    clear, cloudy, _, bands = scene
    dark_only = clear.copy()
    dark_only[:, 40:50, 5:15] *= 0.45  # a dark patch, no cloud anywhere
    mask = change_labels(dark_only, clear, bands).mask
    assert not np.any(mask == SHADOW)
    assert np.all(mask[42:48, 7:13] == NODATA)  # unexplained change is ignored


def test_snowy_reference_is_unusable(maker) -> None:
    pairs = maker("sen12mscr")
    rng = np.random.default_rng(1)
    snow = pairs.spectrum(pairs.SNOW, rng).astype(np.float32)
    green = pairs.spectrum(pairs.VEGETATION, rng).astype(np.float32)
    labels = change_labels(green, snow, pairs.BANDS)
    assert not labels.usable and "snow" in labels.reason
    assert np.all(labels.mask == NODATA)


def test_reference_under_cirrus_gives_no_clear(scene) -> None:
    clear, cloudy, _, bands = scene
    hazy_reference = clear.copy()
    hazy_reference[bands.index("B10")] = 0.04  # the "clear" image lies under cirrus
    mask = change_labels(cloudy, hazy_reference, bands).mask
    assert not np.any(mask == CLEAR)
    assert np.any(mask == THICK)  # a visible rise still counts


def test_offsets_absorb_a_calibration_difference(scene) -> None:
    clear, _, _, bands = scene
    shifted = clear + 0.01
    offsets, share = match_offsets(shifted, clear, tuple(bands), ChangeRules())
    assert share > 0.9
    assert np.allclose(offsets, 0.01, atol=2e-3)
    mask = change_labels(shifted, clear, bands).mask
    assert np.mean(mask == CLEAR) > 0.8


def test_missing_swir_is_refused(scene) -> None:
    clear, cloudy, _, bands = scene
    keep = [i for i, b in enumerate(bands) if b != "B11"]
    with pytest.raises(BandError, match="B11"):
        change_labels(cloudy[keep], clear[keep], [bands[i] for i in keep])


def test_shift_and_consistent_shadow() -> None:
    cloud = np.zeros((40, 40), bool)
    cloud[5:15, 5:15] = True
    assert shift_mask(cloud, 10, 3)[15:25, 8:18].all()
    assert not shift_mask(cloud, 50, 0).any()
    candidates = shift_mask(cloud, 10, 10)
    candidates[30:35, 0:5] = True  # a dark patch no cloud explains
    kept, offset = consistent_shadow(cloud, candidates, ChangeRules(shadow_margin=1))
    assert offset is not None and kept[17:23, 17:23].all()
    assert not kept[30:35, 0:5].any()


def test_temporal_reference_takes_a_clear_date_per_pixel(scene) -> None:
    clear, cloudy, _, bands = scene
    series = np.stack([clear, clear * 1.001, cloudy, clear * 0.999, cloudy])
    reference = temporal_reference(series, 2, bands)
    assert np.allclose(reference, clear, rtol=0.03)
    mask = change_labels(series[2], reference, bands).mask
    assert np.any(mask == THICK) and np.any(mask == THIN)


def test_temporal_reference_needs_three_dates(scene) -> None:
    clear, _, _, bands = scene
    with pytest.raises(BandError, match="3 dates"):
        temporal_reference(np.stack([clear, clear]), 0, bands)


def test_cloud_albedo_is_recovered_from_a_layer_model(scene) -> None:
    clear, _, _, bands = scene
    clear = clear.copy()
    veg = clear.copy()
    t = np.linspace(0.1, 0.7, clear.shape[2], dtype=np.float32)[None, None, :]
    cloudy = t * veg + (1 - t) * 0.5  # a layer of reflectance 0.5, transmittance t
    albedo, n = calibrate_cloud_albedo([(cloudy, veg)], bands)
    assert n > 1000 and albedo == pytest.approx(0.5, abs=0.02)
