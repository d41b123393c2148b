"""The pixel model: feature table, saved-model checks and prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2clouds.errors import BandError, ModelError
from s2clouds.models.base import ModelContext
from s2clouds.models.pixel_features import (
    check_feature_bands,
    default_features,
    feature_row,
    features_halo,
    local_max,
    local_mean,
    local_std,
    pixel_features,
    sampled_features,
)

RGBN = ("B02", "B03", "B04", "B08")
L1C = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def test_default_features_follow_the_bands() -> None:
    rgbn = default_features(RGBN)
    assert rgbn[:4] == RGBN and "ndvi" in rgbn and "brightness_std7" in rgbn
    assert "ndsi" not in rgbn and "nir_swir" not in rgbn  # need B11
    full = default_features(L1C)
    assert {"ndsi", "nir_swir"} <= set(full) and full[: len(L1C)] == L1C
    assert features_halo(rgbn) == 31  # the 63 px windows


def test_features_that_need_missing_bands_or_unknown_names_are_refused() -> None:
    with pytest.raises(BandError, match="B11"):
        check_feature_bands(["ndsi"], RGBN)
    with pytest.raises(ModelError, match="unknown pixel feature"):
        feature_row("sparkle")


def test_window_statistics_ignore_nodata() -> None:
    values = np.full((20, 20), 0.3, np.float32)
    values[5:8, 5:8] = np.nan
    np.testing.assert_allclose(local_mean(values, 7)[6, 6], 0.3, rtol=1e-5)
    assert float(np.nanmax(local_std(values, 7))) < 1e-3
    values[15, 15] = 0.9
    assert local_max(values, 5)[13, 13] == pytest.approx(0.9)
    assert local_max(values, 5)[10, 10] == pytest.approx(0.3)


def test_feature_stack_values_and_nodata() -> None:
    image = np.empty((4, 8, 8), np.float32)
    image[:] = np.array([0.05, 0.08, 0.06, 0.4], np.float32)[:, None, None]
    image[:, 0, 0] = np.nan
    names = ("B08", "ndvi", "brightness", "brightness_mean7")
    stack = pixel_features(image, RGBN, names)
    assert stack.shape == (4, 8, 8) and stack.dtype == np.float32
    assert stack[1, 3, 3] == pytest.approx((0.4 - 0.06) / (0.4 + 0.06))
    assert stack[2, 3, 3] == pytest.approx((0.05 + 0.08 + 0.06) / 3)
    assert np.isnan(stack[0, 0, 0]) and np.isnan(stack[1, 0, 0])
    assert stack[3, 0, 0] == pytest.approx(stack[2, 3, 3])  # the window skips the hole


def test_sampled_features_equal_the_sampled_stack() -> None:
    rng = np.random.default_rng(3)
    image = rng.random((13, 40, 37), dtype=np.float32) * 0.5
    image[:, 5:9, 11:13] = np.nan
    names = default_features(L1C)
    centres = slice(1, None, 3)
    full = pixel_features(image, L1C, names)[:, centres, centres]
    np.testing.assert_array_equal(sampled_features(image, L1C, names, centres, centres), full)


def test_the_command_line_imports_lightgbm_without_scikit_learn() -> None:
    import subprocess
    import sys

    code = (
        "import os, sys; os.environ['S2CLOUDS_LIGHTGBM_WITHOUT_SKLEARN'] = '1'; "
        "from s2clouds.models.pixel import import_lightgbm; lgb = import_lightgbm(); "
        "assert 'sklearn' not in sys.modules and lgb.Booster; "
        "import sklearn; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.fixture(scope="module")
def fitted() -> tuple[object, np.ndarray, np.ndarray]:
    """A pixel model fitted on 2 % scribbles of a scene: (model, image, truth)."""
    pytest.importorskip("lightgbm")
    from s2clouds.train.pixel import PixelTrainConfig, fit_scribbles

    image, truth = cloudy_scene(128, seed=0)
    rng = np.random.default_rng(1)
    scribbles = np.full(truth.shape, 255, np.uint8)
    keep = rng.random(truth.shape) < 0.02
    scribbles[keep] = truth[keep]
    config = PixelTrainConfig(bands=RGBN, rounds=40, num_leaves=15, min_data_in_leaf=5)
    return fit_scribbles(image, scribbles, RGBN, config=config), image, truth


def cloudy_scene(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(4, size, size) float32 reflectance of noisy vegetation with a bright cloud disc, a
    hazy thin-cloud band and a shadow disc; its canonical truth (size, size) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    image = np.array([0.04, 0.07, 0.05, 0.35], np.float32)[:, None, None] * (
        1 + 0.1 * rng.standard_normal((4, size, size)).astype(np.float32)
    )
    truth = np.zeros((size, size), np.uint8)
    cloud = (yy - size * 0.3) ** 2 + (xx - size * 0.3) ** 2 < (size * 0.15) ** 2
    shadow = (yy - size * 0.7) ** 2 + (xx - size * 0.6) ** 2 < (size * 0.12) ** 2
    thin = (xx > size * 0.8) & ~cloud & ~shadow
    image[:, shadow] *= 0.35
    image[:, thin] = 0.6 * image[:, thin] + 0.4 * 0.3
    image[:, cloud] = 0.55 + 0.02 * rng.standard_normal((4, int(cloud.sum())))
    truth[shadow], truth[thin], truth[cloud] = 3, 2, 1
    return np.clip(image, 0.001, 1.0).astype(np.float32), truth


def test_scribbles_teach_the_whole_image(fitted: tuple[object, np.ndarray, np.ndarray]) -> None:
    model, image, truth = fitted
    other, other_truth = cloudy_scene(128, seed=5)  # an unseen image of the same kind
    for img, ref in ((image, truth), (other, other_truth)):
        pred = model.predict_proba(img, ModelContext()).argmax(0)  # type: ignore[attr-defined]
        for c in range(4):
            assert np.mean(pred[ref == c] == c) > 0.9, c


def test_saved_model_round_trips_and_refuses_tampering(
    fitted: tuple[object, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    from s2clouds.models.pixel import PixelModel
    from s2clouds.models.registry import get_model_info

    model, image, _ = fitted
    assert isinstance(model, PixelModel)
    path = model.save(tmp_path / "scribbles.lgbm")
    assert path.with_suffix(".json").is_file() and model.spec.sha256
    loaded = get_model_info(str(path)).factory(["B08", "B04", "B03", "B02"])
    np.testing.assert_allclose(
        loaded.predict_proba(image, ModelContext()),
        model.predict_proba(image, ModelContext()),
        atol=1e-6,
    )
    with pytest.raises(BandError, match="B02"):
        get_model_info(str(path)).factory(["B03", "B04", "B08"])
    path.write_text(path.read_text() + "\n")
    with pytest.raises(ModelError, match="corrupt or modified"):
        PixelModel.load(path)
    with pytest.raises(ModelError, match=r"\.lgbm"):
        model.save(tmp_path / "model.txt")


def test_a_spec_that_does_not_match_the_booster_is_refused(
    fitted: tuple[object, np.ndarray, np.ndarray],
) -> None:
    from s2clouds.models.pixel import PixelModel

    model, _, _ = fitted
    assert isinstance(model, PixelModel)
    fewer = model.spec.replace(features=model.spec.features[:-1])
    with pytest.raises(ModelError, match="features"):
        PixelModel(model.booster, fewer)
    with pytest.raises(ModelError, match="not a pixel model"):
        PixelModel(model.booster, model.spec.replace(architecture="tiny-unet"))


def test_cell_interpolation_is_bilinear_at_the_right_positions() -> None:
    from s2clouds.models.pixel import interpolate_cells

    rows, cols = np.mgrid[:12, :16].astype(np.float32)
    plane = 0.5 * rows + 0.25 * cols  # linear: bilinear interpolation reproduces it
    coarse = plane[None, 2::4, 2::4]
    full = interpolate_cells(coarse, (12, 16), 4)
    assert full.shape == (1, 12, 16)
    np.testing.assert_allclose(full[0, 2:11, 2:15], plane[2:11, 2:15], atol=1e-5)


def test_a_strided_model_agrees_with_every_pixel_and_keeps_the_contract(
    fitted: tuple[object, np.ndarray, np.ndarray],
) -> None:
    from s2clouds.models.pixel import PixelModel

    model, image, _ = fitted
    assert isinstance(model, PixelModel)
    strided = PixelModel(model.booster, model.spec.replace(stride=2))
    exact = model.predict_proba(image, ModelContext())
    image = image.copy()
    image[:, :3, :3] = np.nan
    coarse = strided.predict_proba(image, ModelContext())
    assert coarse.shape == exact.shape and coarse.dtype == np.float32
    np.testing.assert_allclose(coarse.sum(axis=0), 1.0, atol=1e-5)
    assert np.mean(coarse.argmax(0) == exact.argmax(0)) > 0.95


def test_nodata_cells_do_not_leak_clear_into_valid_pixels(
    fitted: tuple[object, np.ndarray, np.ndarray],
) -> None:
    """A no-data row on the cell centres, or no data on every other row, must not turn the
    valid cloud pixels around it clear; inputs smaller than a cell are classified whole."""
    from s2clouds.models.pixel import PixelModel

    model, image, truth = fitted
    assert isinstance(model, PixelModel)
    strided = PixelModel(model.booster, model.spec.replace(stride=4))
    cloud = image[:, 28:48, 28:48].copy()  # inside the thick cloud disc
    assert np.all(truth[28:48, 28:48] == 1)
    for rows in (slice(6, 7), slice(0, None, 2)):
        holed = cloud.copy()
        holed[:, rows] = np.nan
        probs = strided.predict_proba(holed, ModelContext())
        valid = np.all(np.isfinite(holed), axis=0)
        assert np.all(probs.argmax(0)[valid] == 1)
    tiny = strided.predict_proba(cloud[:, :2, :], ModelContext())
    assert tiny.shape == (4, 2, 20) and np.all(tiny.argmax(0) == 1)
