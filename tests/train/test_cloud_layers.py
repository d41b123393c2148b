"""Real cloud layers moved onto other surfaces: opacity and cloud reflectance from a pair,
shadow cast away from the sun, and labels that follow the construction."""

from __future__ import annotations

import numpy as np
import pytest

from s2clouds.bands import L1C_BANDS
from s2clouds.labels import NODATA
from s2clouds.train.cloud_layers import (
    CloudLayer,
    Geometry,
    composite_layer,
    composite_target,
    layer_from_pair,
)
from s2clouds.train.surfaces import Labelled, all_clear

#: a vegetated TOA spectrum (13 bands) and a bright cloud
VEGETATION = np.array(
    [0.12, 0.09, 0.08, 0.06, 0.1, 0.2, 0.25, 0.3, 0.31, 0.1, 0.002, 0.18, 0.09], np.float32
)
CLOUD = np.array(
    [0.6, 0.58, 0.57, 0.57, 0.58, 0.6, 0.6, 0.6, 0.6, 0.35, 0.02, 0.45, 0.35], np.float32
)


def scene(size: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (VEGETATION[:, None, None] * rng.uniform(0.9, 1.1, (13, size, size))).astype(np.float32)


def test_layer_from_a_pair_finds_the_cloud_and_its_reflectance() -> None:
    clear = scene()
    cloudy = clear.copy()
    cloudy[:, 30:60, 30:60] = CLOUD[:, None, None]  # an opaque cloud
    layer = layer_from_pair(cloudy, clear, L1C_BANDS, "pair")
    assert layer is not None
    core = layer.opacity[35:55, 35:55]
    assert np.all(core == pytest.approx(1.0))
    assert np.nanmax(layer.opacity[:, :20]) < 0.03  # clear far from the cloud
    # the cloud's own reflectance where it is opaque is what the pair shows there
    np.testing.assert_allclose(layer.reflectance[:, 40, 40], CLOUD, atol=0.02)
    assert layer.cirrus[40, 40] == pytest.approx(CLOUD[10] - clear[10, 40, 40], abs=1e-3)


def test_a_pair_without_cloud_gives_no_layer() -> None:
    clear = scene()
    assert layer_from_pair(clear.copy(), clear, L1C_BANDS) is None


def test_geometry_casts_the_shadow_away_from_the_sun() -> None:
    # sun in the south (azimuth 180): the shadow falls north, i.e. up the rows
    rows, cols = Geometry(azimuth=180, zenith=45, height=500).shadow_offset()
    assert (rows, cols) == (-50, 0)
    rows, cols = Geometry(azimuth=90, zenith=45, height=300).shadow_offset()  # sun in the east
    assert (rows, cols) == (0, -30)


def block_layer(size: int = 96, opacity: float = 1.0) -> CloudLayer:
    a = np.zeros((size, size), np.float32)
    a[40:60, 40:60] = opacity
    reflectance = np.broadcast_to(CLOUD[:, None, None], (13, size, size)).copy()
    return CloudLayer(a, reflectance, np.zeros_like(a), L1C_BANDS, "block")


def test_composite_labels_follow_the_construction() -> None:
    surface = scene()
    item = Labelled(surface, L1C_BANDS, all_clear(surface), "L1C", "field")
    geometry = Geometry(azimuth=180, zenith=45, height=200)  # shadow 20 px up the rows
    out = composite_layer(item, block_layer(), geometry, np.random.default_rng(0))
    assert out is not None and out.image.shape == surface.shape
    assert np.all(out.target[42:58, 42:58] == 1)  # thick
    assert np.all(out.target[22:38, 42:58] == 3)  # shadow, down-sun and off the cloud
    assert np.all(out.target[62:76, :] == 0)  # clear
    # the last 20 rows would be shaded from beyond the layer's edge: unknown, not clear
    assert np.all(out.target[76:, :] == NODATA)
    # the shadow darkens NIR far more than blue (sky light), the cloud takes its reflectance
    nir, blue = L1C_BANDS.index("B08"), L1C_BANDS.index("B02")
    ratio = out.image[:, 30, 50] / surface[:, 30, 50]
    assert ratio[nir] < 0.4 < ratio[blue] < 1.0
    np.testing.assert_allclose(out.image[:, 50, 50], CLOUD, atol=1e-5)


def test_composite_over_l2a_removes_the_path_reflectance_from_the_cloud() -> None:
    bands = tuple(b for b in L1C_BANDS if b != "B10")
    surface = scene()[[L1C_BANDS.index(b) for b in bands]]
    item = Labelled(surface, bands, all_clear(surface), "L2A", "field")
    out = composite_layer(item, block_layer(), Geometry(0, 30, 300), np.random.default_rng(1))
    assert out is not None
    blue = bands.index("B02")
    assert out.image[blue, 50, 50] < CLOUD[1] - 0.03


def test_thin_cloud_and_the_unknown() -> None:
    opacity = np.array([[0.0, 0.05, 0.35, 0.7, np.nan]], np.float32)
    shade = np.zeros_like(opacity)
    assert composite_target(opacity, shade, None).tolist() == [[0, NODATA, 2, 1, NODATA]]
    # cirrus only (no visible rise) is thin cloud where the image has B10
    cirrus = np.array([[0.01, 0.0, 0.0, 0.0, 0.0]], np.float32)
    assert composite_target(opacity, shade, cirrus)[0, 0] == 2
    # a pixel whose casting cloud is unknown is never called clear
    shade[0, 0] = np.nan
    assert composite_target(opacity, shade, None)[0, 0] == NODATA


def test_a_layer_without_the_surface_bands_is_not_used() -> None:
    surface = np.ones((3, 20, 20), np.float32) * 0.1
    item = Labelled(surface, ("B02", "B03", "B99"), all_clear(surface), "L1C", "odd")
    assert (
        composite_layer(item, block_layer(), Geometry(0, 30, 300), np.random.default_rng(0)) is None
    )


def test_a_veil_that_changes_nothing_visible_is_not_labelled_cloud() -> None:
    bands = ("B02", "B03", "B04", "B08", "B11")
    rise = np.zeros((5, 1, 3), np.float32)
    rise[:, 0, 0] = [0.08, 0.07, 0.06, 0.05, 0.04]  # a veil over a dark field: seen
    rise[:, 0, 1] = [0.02, 0.02, 0.02, 0.02, 0.01]  # the same veil over a bright roof
    rise[:, 0, 2] = [-0.1, -0.1, -0.1, -0.05, 0.2]  # cloud over snow: darker, but SWIR rises
    from s2clouds.train.cloud_layers import visible_cloud

    seen = visible_cloud(rise, bands)
    assert seen[0].tolist() == [True, False, True]
    opacity = np.full((1, 3), 0.4, np.float32)
    target = composite_target(opacity, np.zeros_like(opacity), None, seen)
    assert target[0].tolist() == [2, NODATA, 2]


def test_shadow_on_dark_water_is_not_labelled() -> None:
    from s2clouds.train.cloud_layers import visible_shadow

    bands = ("B02", "B03", "B04", "B08", "B11")
    lit = np.array(
        [[0.05, 0.06], [0.06, 0.05], [0.05, 0.03], [0.3, 0.02], [0.2, 0.01]], np.float32
    )[:, None, :]  # a field, then dark water
    shaded = lit * 0.3
    assert visible_shadow(lit, shaded, bands)[0].tolist() == [True, False]


def test_shadow_on_bright_sand_that_looks_like_water_is_not_labelled() -> None:
    from s2clouds.train.cloud_layers import visible_shadow

    bands = ("B02", "B03", "B04", "B08", "B11")
    sand = np.array([0.25, 0.3, 0.35, 0.4, 0.5], np.float32)[:, None, None]
    diffuse = np.array([0.4, 0.3, 0.25, 0.14, 0.1], np.float32)[:, None, None]
    shaded = sand * (1 - 0.85 * (1 - diffuse))  # bluish: NDWI above 0, like turbid water
    assert not visible_shadow(sand, shaded, bands).any()
