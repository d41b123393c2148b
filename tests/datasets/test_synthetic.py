"""Synthetic clouds and shadows on clear surfaces: shapes, physics, determinism, contract."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from s2clouds.bands import MSI_BAND_NAMES
from s2clouds.datasets.base import SAMPLE_KEYS
from s2clouds.datasets.synthetic import (
    CLOUD_SPECTRA,
    CloudParameters,
    LabelRules,
    SyntheticClouds,
    draw_parameters,
    render,
    shadow_shift,
    synthesize,
)
from s2clouds.errors import BandError, DatasetError
from s2clouds.labels import CLEAR, CLOUD_SHADOW, NODATA, THICK_CLOUD, THIN_CLOUD
from s2clouds.models.physical import PhysicalModel

BANDS = ("B02", "B03", "B04", "B08", "B10", "B11")
#: a dark vegetated surface: blue 0.04, green 0.07, red 0.05, NIR 0.30, B10 0.002, SWIR 0.15
VEGETATION = np.array([0.04, 0.07, 0.05, 0.30, 0.002, 0.15], dtype=np.float32)


def vegetation(size: int = 96, seed: int = 0) -> np.ndarray:
    """(6, size, size) float32 reflectance: vegetation with 5 % noise."""
    rng = np.random.default_rng(seed)
    noise = 1 + 0.05 * rng.standard_normal((len(BANDS), size, size))
    return (VEGETATION[:, None, None] * noise).astype(np.float32)


def cloudy(**changes: float | str) -> CloudParameters:
    """Parameters of a cloudy sample with a long, well-visible shadow (then ``changes``)."""
    params = replace(
        draw_parameters(np.random.default_rng(7), sun_zenith=45.0, sun_azimuth=135.0),
        kind="cloudy",
        coverage=0.3,
        max_opacity=1.0,
        brightness=1.0,
        cloud_height_m=1000.0,
        shadow_strength=0.7,
        ramp=0.5,
        side_shading=0.0,
        edge_dimming=0.0,
    )
    return replace(params, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rendered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    surface = vegetation()
    image, mask = render(surface, BANDS, cloudy(), np.random.default_rng(1), resolution=10.0)
    return surface, image, mask


def test_synthesis_keeps_shapes_and_dtypes(rendered) -> None:
    surface, image, mask = rendered
    assert image.shape == surface.shape and image.dtype == np.float32
    assert mask.shape == surface.shape[1:] and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW}


def test_every_class_appears_in_a_cloudy_sample(rendered) -> None:
    _, _, mask = rendered
    assert {CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW} <= set(np.unique(mask))


def test_cloud_is_brighter_in_blue_than_the_surface(rendered) -> None:
    surface, image, mask = rendered
    blue = BANDS.index("B02")
    thick, thin = mask == THICK_CLOUD, mask == THIN_CLOUD
    assert np.all(image[blue][thick] > surface[blue][thick] + 0.3)
    assert np.all(image[blue][thin] > surface[blue][thin])
    assert image[blue][thick].mean() > image[blue][thin].mean()


def test_cloud_sides_turned_from_the_sun_are_darker_and_edges_greyer() -> None:
    """A round cloud lit from the east (azimuth 90): its west side is darker than its east."""
    from s2clouds.datasets.synthetic import cloud_illumination

    rows, cols = np.mgrid[:64, :64]
    alpha = np.clip(1.5 - np.hypot(rows - 32, cols - 32) / 12, 0, 1).astype(np.float32)
    lit = cloud_illumination(alpha, cloudy(sun_azimuth=90.0, side_shading=0.4))
    east, west = lit[32, 40:46].mean(), lit[32, 18:24].mean()
    assert east > 1.1 and west < 0.9 and lit[26:38, 30:34].mean() == pytest.approx(1, abs=0.05)
    dimmed = cloud_illumination(alpha, cloudy(edge_dimming=0.4))
    assert dimmed[32, 32] == pytest.approx(1.0) and dimmed[32, 48] < 0.9  # thin edge
    assert np.all(cloud_illumination(alpha, cloudy()) == 1.0)


def test_shadow_is_darker_in_nir_and_darkens_blue_less(rendered) -> None:
    """Against the same draw without shadow: NIR drops, blue drops less (bluish skylight)."""
    surface, image, mask = rendered
    no_shadow = cloudy(shadow_strength=0.0)
    unshaded, _ = render(surface, BANDS, no_shadow, np.random.default_rng(1), resolution=10.0)
    nir, blue = BANDS.index("B08"), BANDS.index("B02")
    shadow = mask == CLOUD_SHADOW
    drop = (unshaded - image)[:, shadow] / surface[:, shadow]
    assert np.all(drop[nir] > 0.2)
    assert np.all(drop[blue] < drop[nir])
    assert np.median(image[nir][shadow] / surface[nir][shadow]) <= 0.75


def test_clear_pixels_are_untouched_where_no_cloud_or_shadow_reaches(rendered) -> None:
    surface, image, mask = rendered
    same = np.all(np.isclose(image, surface), axis=0)
    assert same.any()
    assert np.all(mask[same] == CLEAR)


def test_no_shadow_label_under_cloud() -> None:
    """Shadow under a cloud is labelled as the cloud, whatever the geometry."""
    surface = vegetation(64)
    for seed in range(6):
        params = cloudy(coverage=0.6, sun_azimuth=60.0 * seed)
        alpha_rng = np.random.default_rng(seed)
        _, mask = render(surface, BANDS, params, alpha_rng, resolution=10.0)
        clear_run = np.random.default_rng(seed)
        no_shadow = replace(params, shadow_strength=0.0)
        _, cloud_only = render(surface, BANDS, no_shadow, clear_run, resolution=10.0)
        under_cloud = np.isin(cloud_only, [THICK_CLOUD, THIN_CLOUD])
        assert not np.any(mask[under_cloud] == CLOUD_SHADOW)
        assert np.array_equal(mask[under_cloud], cloud_only[under_cloud])


def test_a_lower_thin_threshold_widens_cloud_outlines_only() -> None:
    """Same rendering, other label rules: the image is identical, cloud grows at its edges."""
    surface = vegetation(64)
    params = cloudy(coverage=0.4, sun_azimuth=100.0)
    image, strict = render(surface, BANDS, params, np.random.default_rng(3), resolution=10.0)
    wide_rules = LabelRules(thin_alpha=0.02)
    same, wide = render(
        surface, BANDS, params, np.random.default_rng(3), resolution=10.0, rules=wide_rules
    )
    np.testing.assert_array_equal(image, same)
    cloud = np.isin(strict, [THICK_CLOUD, THIN_CLOUD])
    wide_cloud = np.isin(wide, [THICK_CLOUD, THIN_CLOUD])
    assert np.all(wide_cloud[cloud]) and wide_cloud.sum() > cloud.sum()
    assert np.array_equal(strict == THICK_CLOUD, wide == THICK_CLOUD)
    with pytest.raises(DatasetError, match="thin_alpha"):
        LabelRules(thin_alpha=0.7)


def test_shadow_lies_away_from_the_sun() -> None:
    """Sun in the south-east (azimuth 135): shadows fall north-west of their clouds."""
    d_row, d_col = shadow_shift(1000.0, 45.0, 135.0, 10.0)
    assert d_row < 0 and d_col < 0
    assert np.hypot(d_row, d_col) == pytest.approx(100.0, abs=1.0)


def test_shadow_direction_matches_the_physical_model() -> None:
    ours = shadow_shift(2000.0, 30.0, 210.0, 20.0)
    offsets = PhysicalModel.shadow_offsets(30.0, 210.0, 20.0)
    distance = np.hypot(*ours)
    nearest = min(offsets, key=lambda o: abs(np.hypot(*o) - distance))
    assert np.allclose(nearest, ours, atol=2)


def test_thin_only_samples_hold_no_thick_cloud_and_cirrus_brightens_b10() -> None:
    surface = vegetation(64)
    params = cloudy(kind="thin", max_opacity=0.5, cirrus=1.0, coverage=0.5)
    image, mask = render(surface, BANDS, params, np.random.default_rng(3), resolution=10.0)
    assert not np.any(mask == THICK_CLOUD) and np.any(mask == THIN_CLOUD)
    b10 = BANDS.index("B10")
    thin = mask == THIN_CLOUD
    assert image[b10][thin].mean() > 20 * surface[b10][thin].mean()


def test_clear_kind_leaves_the_surface_as_it_is() -> None:
    surface = vegetation(48)
    params = cloudy(kind="clear", coverage=0.0)
    image, mask = render(surface, BANDS, params, np.random.default_rng(0), resolution=10.0)
    np.testing.assert_allclose(image, surface, rtol=1e-6)
    assert np.all(mask == CLEAR)


def test_nan_surface_is_no_data() -> None:
    surface = vegetation(48)
    surface[:, :10, :] = np.nan
    image, mask = synthesize(
        surface, BANDS, np.random.default_rng(2), sun_zenith=30, sun_azimuth=100, resolution=10
    )
    assert np.all(mask[:10] == NODATA) and not np.any(mask[10:] == NODATA)
    assert np.all(np.isnan(image[:, :10]))


def test_synthesize_is_deterministic_per_generator_state() -> None:
    surface = vegetation(48)

    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        return synthesize(surface, BANDS, rng, sun_zenith=40, sun_azimuth=150, resolution=20)

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_band_count_mismatch_and_unknown_bands_are_refused() -> None:
    with pytest.raises(BandError, match="one plane per band"):
        render(vegetation(16), BANDS[:3], cloudy(), np.random.default_rng(0), resolution=10)
    with pytest.raises(BandError, match="no cloud spectrum"):
        render(
            vegetation(16), (*BANDS[:5], "SCL"), cloudy(), np.random.default_rng(0), resolution=10
        )


def test_cloud_spectra_cover_every_band_and_are_physical() -> None:
    assert set(CLOUD_SPECTRA) == set(MSI_BAND_NAMES)
    visible = [CLOUD_SPECTRA[b] for b in ("B02", "B03", "B04", "B08")]
    assert min(visible) >= 0.5 and max(visible) <= 0.8
    assert 0.3 <= CLOUD_SPECTRA["B11"] <= 0.5 and 0.2 <= CLOUD_SPECTRA["B12"] <= 0.35


# ------------------------------------------------------------------------------ the dataset
@pytest.fixture(scope="module")
def dataset() -> SyntheticClouds:
    surfaces = [(vegetation(80, seed=s), BANDS) for s in range(3)]
    return SyntheticClouds(surfaces, n=40, size=64, seed=11)


def test_dataset_samples_follow_the_contract(dataset: SyntheticClouds) -> None:
    assert len(dataset) == 40
    sample = dataset[3]
    assert set(SAMPLE_KEYS) <= set(sample)
    assert sample["image"].shape == (len(BANDS), 64, 64) and sample["image"].dtype == np.float32
    assert sample["mask"] is sample["mask_canonical"] and sample["mask"].dtype == np.uint8
    assert sample["valid"].dtype == bool and np.array_equal(sample["valid"], sample["mask"] != 255)
    assert sample["bands"] == BANDS and sample["crs"] is None and sample["transform"] is None
    meta = sample["meta"]
    assert meta["id"] == "synthetic_11_3" and meta["resolution"] == 10.0
    assert 15 <= meta["sun_zenith"] <= 65 and 0 <= meta["sun_azimuth"] < 360
    assert meta["kind"] in ("clear", "thin", "cloudy")
    assert SyntheticClouds.detect(Path(".")) is False
    assert dataset.name == "synthetic" and dataset.label_scheme == "canonical"


def test_dataset_sample_depends_only_on_seed_and_index(dataset: SyntheticClouds) -> None:
    again = SyntheticClouds(
        [(vegetation(80, seed=s), BANDS) for s in range(3)], n=5, size=64, seed=11
    )
    for i in (0, 4):
        np.testing.assert_array_equal(dataset[i]["image"], again[i]["image"])
        np.testing.assert_array_equal(dataset[i]["mask"], again[i]["mask"])
    np.testing.assert_array_equal(dataset[2]["mask"], dataset[2]["mask"])
    assert not np.array_equal(dataset[1]["image"], dataset[2]["image"])


def test_dataset_draws_every_kind_and_class(dataset: SyntheticClouds) -> None:
    samples = list(dataset)
    kinds = {s["meta"]["kind"] for s in samples}
    assert kinds == {"clear", "thin", "cloudy"}
    classes = set().union(*(np.unique(s["mask"]).tolist() for s in samples))
    assert {CLEAR, THICK_CLOUD, THIN_CLOUD, CLOUD_SHADOW} <= classes
    for s in samples:
        if s["meta"]["kind"] == "clear":
            assert np.all(s["mask"] == CLEAR)


def test_dataset_selects_bands_and_refuses_bad_input() -> None:
    surfaces = [(vegetation(40), BANDS)]
    ds = SyntheticClouds(surfaces, bands=["nir", "B2"], n=2, size=32)
    assert ds[0]["bands"] == ("B08", "B02") and ds[0]["image"].shape == (2, 32, 32)
    with pytest.raises(BandError, match="lacks band"):
        SyntheticClouds(surfaces, bands=["B05"], n=2, size=32)
    with pytest.raises(DatasetError, match="smaller than the crop size"):
        SyntheticClouds(surfaces, n=2, size=64)
    with pytest.raises(DatasetError, match="at least one clear surface"):
        SyntheticClouds([], n=2, size=32)
    with pytest.raises(IndexError):
        ds[2]


def test_dataset_reads_surfaces_from_band_folders(tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    surface = vegetation(40)[:4]
    for band, plane in zip(BANDS[:4], surface, strict=True):
        profile = {"driver": "GTiff", "height": 40, "width": 40, "count": 1, "dtype": "uint16"}
        profile |= {"crs": "EPSG:32632", "transform": Affine(20, 0, 0, 0, -20, 0), "nodata": 0}
        with rasterio.open(tmp_path / f"{band}.tif", "w", **profile) as dst:
            dst.write(np.rint(plane * 10000).astype("uint16"), 1)
    ds = SyntheticClouds([tmp_path], n=2, size=32, seed=1)
    sample = ds[0]
    assert sample["bands"] == BANDS[:4] and sample["meta"]["resolution"] == 20.0
    assert sample["meta"]["source"] == str(tmp_path)
