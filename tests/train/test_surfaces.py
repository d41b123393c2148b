"""Readers of the cloud-free real crops and the radiometric and scale variants."""

from __future__ import annotations

import numpy as np
import pytest

from s2clouds.labels import NODATA
from s2clouds.train.surfaces import (
    PATH_REFLECTANCE,
    all_clear,
    coarsen,
    impute_cirrus,
    l2a_like,
    read_dsen2,
    read_geotiff_dn,
    toa_like,
)

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


def test_l2a_and_toa_like_are_inverse_by_wavelength() -> None:
    image = np.full((len(BANDS), 4, 4), 0.3, np.float32)
    toa = toa_like(image, BANDS, 1.0)
    assert toa[0, 0, 0] - 0.3 == pytest.approx(PATH_REFLECTANCE["B02"], abs=1e-6)
    assert toa[0, 0, 0] > toa[2, 0, 0] > toa[4, 0, 0]  # blue scatters most
    assert np.allclose(l2a_like(toa, BANDS, 1.0), image)
    assert l2a_like(np.zeros_like(image), BANDS, 1.0).min() > 0  # never negative


def test_impute_cirrus_inserts_b10_in_order() -> None:
    image = np.random.default_rng(0).uniform(0.1, 0.4, (len(BANDS), 3, 3)).astype(np.float32)
    out, names = impute_cirrus(image, BANDS, 0.04)
    assert names == ("B02", "B03", "B04", "B08", "B10", "B11", "B12")
    assert np.allclose(out[4], 0.04 * image[5] + 0.0005)


def test_coarsen_keeps_agreeing_blocks_only() -> None:
    image = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)
    target = np.zeros((5, 5), np.uint8)
    target[0, 1] = 1
    small, labels = coarsen(image, target, 2)
    assert small.shape == (2, 2, 2) and labels.shape == (2, 2)
    assert small[0, 0, 0] == np.mean(image[0, :2, :2])
    assert labels[0, 0] == NODATA and labels[1, 1] == 0


def test_all_clear_ignores_no_data() -> None:
    image = np.ones((2, 2, 2), np.float32)
    image[1, 0, 0] = np.nan
    assert all_clear(image).tolist() == [[NODATA, 0], [0, 0]]


def test_readers_on_real_crops(real_data) -> None:
    image, bands = read_dsen2(real_data / "dsen2" / "S2B_MSIL1C_20171022_T49JGM.npz")
    assert image.shape == (12, 600, 600) and "B10" not in bands and bands[0] == "B01"
    assert 0.05 < float(np.nanmedian(image[bands.index("B02")])) < 0.5
    with_offset, _ = read_geotiff_dn(real_data / "s2_100k" / "patch_252161.tif")
    without, names = read_geotiff_dn(real_data / "s2_100k" / "patch_25630.tif")
    assert float(np.nanmin(with_offset)) < 0.05  # the +1000 offset was found and removed
    assert float(np.nanmedian(without[names.index("B02")])) > 0.8  # ice: no offset removed
