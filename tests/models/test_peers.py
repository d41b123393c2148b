"""The peer adapters (s2cloudless, ukis-csmask) against the peer packages run directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2clouds.errors import BandError, ModelError
from s2clouds.models.base import CloudModel, ModelContext
from s2clouds.models.peers import (
    S2CLOUDLESS_BANDS,
    UKIS_BANDS_4,
    UKIS_BANDS_6,
    S2CloudlessModel,
    UkisCsmaskModel,
    import_peer,
    threshold_to_half,
)
from s2clouds.models.registry import get_model, list_models
from s2clouds.resample import block_mean, upsample_bilinear

L1C_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10")
L1C_ORDER += ("B11", "B12")


@pytest.fixture(scope="module")
def l1c_scene(real_data: Path) -> dict[str, np.ndarray]:
    """s2cloudless's own test scene: ``image`` (13, 856, 512) L1C TOA reflectance, its outputs."""
    data = np.load(real_data / "s2cloudless_l1c_scene" / "input_arrays.npz")
    return {
        "image": np.moveaxis(data["s2_im"][0], -1, 0),
        "cl_probs": data["cl_probs"][0],
        "cl_mask": data["cl_mask"][0],
    }


def select(scene: dict[str, np.ndarray], bands: tuple[str, ...]) -> np.ndarray:
    return scene["image"][[L1C_ORDER.index(b) for b in bands]]


@pytest.fixture(scope="module")
def chip1(real_data: Path) -> np.ndarray:
    """On Cloud N chip 1: (4, 512, 512) float32 L2A reflectance, bands B02 B03 B04 B08."""
    rasterio = pytest.importorskip("rasterio")
    planes = []
    for band in UKIS_BANDS_4:
        with rasterio.open(real_data / "oncloudn_chip1" / f"{band}.tif") as src:
            planes.append(src.read(1))
    return np.stack(planes).astype(np.float32) / 10000


def assert_probabilities(probs: np.ndarray, shape: tuple[int, int]) -> None:
    assert probs.shape == (4, *shape)
    assert probs.dtype == np.float32
    assert np.isfinite(probs).all()
    assert probs.min() >= 0.0
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert (probs[2] == 0).all()  # neither peer separates thin cloud


# ------------------------------------------------------------------------- shared helpers
def test_block_mean_ignores_nan_and_keeps_partial_blocks() -> None:
    image = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    image[0, 0, 0] = np.nan
    coarse = block_mean(image, 4)
    assert coarse.shape == (2, 2, 2)
    assert coarse[0, 0, 0] == pytest.approx(np.nanmean(image[0, :4, :4]))
    assert coarse[1, 1, 1] == pytest.approx(image[1, 4:, 4:].mean())  # 1 x 3 partial block
    empty = block_mean(np.full((1, 4, 4), np.nan, np.float32), 2)
    assert (empty == 0).all()


def test_upsample_bilinear_is_centre_aligned() -> None:
    ramp = np.arange(4, dtype=np.float32)[None, None, :].repeat(3, axis=1)  # (1, 3, 4)
    fine = upsample_bilinear(ramp, 4, (12, 16))
    assert fine.shape == (1, 12, 16)
    # block j is centred on pixel 4 j + 1.5: pixels 1 and 2 straddle the first centre
    np.testing.assert_allclose(fine[0, 0, :4], [0.0, 0.0, 0.125, 0.375])
    np.testing.assert_allclose(fine[0, 0, 5:7], [0.875, 1.125])
    assert (fine[0, :, -2:] == 3.0).all()  # clamped at the edge


def test_threshold_to_half_is_monotone_and_moves_the_threshold() -> None:
    p = np.array([0.0, 0.2, 0.4, 0.41, 0.7, 1.0], dtype=np.float32)
    out = threshold_to_half(p, 0.4)
    np.testing.assert_allclose(out, [0.0, 0.25, 0.5, 0.5 + 0.01 * 0.5 / 0.6, 0.75, 1.0], 1e-6)
    assert ((out > 0.5) == (p > 0.4)).all()


def test_missing_peer_package_says_how_to_install() -> None:
    with pytest.raises(ModelError, match=r'pip install "s2clouds\[peers\]"'):
        import_peer("s2clouds_no_such_peer_module")


def test_registered_with_their_band_needs() -> None:
    names = [info.name for info in list_models()]
    assert {"physical", "s2cloudless", "ukis-csmask"} <= set(names)
    assert get_model("s2cloudless", L1C_ORDER).bands == S2CLOUDLESS_BANDS
    assert get_model("ukis-csmask", ["blue", "green", "red", "nir"]).bands == UKIS_BANDS_4
    assert get_model("ukis-csmask", L1C_ORDER).bands == UKIS_BANDS_6
    assert isinstance(UkisCsmaskModel(), CloudModel)
    assert isinstance(S2CloudlessModel(), CloudModel)


# ------------------------------------------------------------------------------ s2cloudless
def test_s2cloudless_refuses_missing_bands_and_l2a() -> None:
    l2a_bands = [b for b in L1C_ORDER if b != "B10"]
    with pytest.raises(BandError, match="missing B10"):
        S2CloudlessModel.for_bands(l2a_bands)
    model = S2CloudlessModel()
    image = np.full((10, 16, 16), 0.1, np.float32)
    with pytest.raises(ModelError, match="L1C"):
        model.predict_proba(image, ModelContext(resolution=10, level="L2A"))
    with pytest.raises(ModelError, match="unknown processing level"):
        model.predict_proba(image, ModelContext(resolution=10, level="L3"))
    with pytest.raises(BandError, match="expects 10 bands"):
        model.predict_proba(image[:4], ModelContext(resolution=10))


@pytest.mark.peers
def test_s2cloudless_bands_are_the_package_bands() -> None:
    utils = pytest.importorskip("s2cloudless.utils")
    assert tuple(utils.MODEL_BANDS) == S2CLOUDLESS_BANDS


@pytest.mark.peers
def test_s2cloudless_raw_probability_matches_the_package(
    l1c_scene: dict[str, np.ndarray],
) -> None:
    """At 160 m (factor 1) the raw probability is s2cloudless 0.1's own ``cl_probs``."""
    pytest.importorskip("s2cloudless")
    crop = select(l1c_scene, S2CLOUDLESS_BANDS)[:, 300:364, 200:264]
    probs = S2CloudlessModel(postprocess=False).predict_proba(crop, ModelContext(resolution=160))
    assert_probabilities(probs, (64, 64))
    np.testing.assert_allclose(probs[1], l1c_scene["cl_probs"][300:364, 200:264], atol=1e-6)
    assert (probs[3] == 0).all()


@pytest.mark.peers
def test_s2cloudless_argmax_is_the_package_mask(l1c_scene: dict[str, np.ndarray]) -> None:
    """Post-processed probabilities reproduce ``get_cloud_masks`` (threshold 0.4, disks 4, 2)."""
    s2cloudless = pytest.importorskip("s2cloudless")
    crop = select(l1c_scene, S2CLOUDLESS_BANDS)[:, 128:224, 64:160]
    detector = s2cloudless.S2PixelCloudDetector(
        threshold=0.4, average_over=4, dilation_size=2, all_bands=False
    )
    expected = detector.get_cloud_masks(np.moveaxis(crop, 0, -1)[np.newaxis])[0]
    assert 0.05 < expected.mean() < 0.95  # the crop holds both classes
    probs = S2CloudlessModel().predict_proba(crop, ModelContext(resolution=160, level="L1C"))
    assert_probabilities(probs, (96, 96))
    np.testing.assert_array_equal(probs.argmax(axis=0), expected)


@pytest.mark.peers
def test_s2cloudless_at_10m_runs_on_160m_blocks(l1c_scene: dict[str, np.ndarray]) -> None:
    """A 10 m input is averaged over 16 x 16 blocks; output keeps the input grid; NaN is fine."""
    pytest.importorskip("s2cloudless")
    image = select(l1c_scene, S2CLOUDLESS_BANDS)[:, :200, :150].copy()
    image[:, :20, :20] = np.nan
    model = S2CloudlessModel()
    assert model.required_halo(ModelContext(resolution=10)) == 7 * 16
    probs = model.predict_proba(image, ModelContext(resolution=10))
    assert_probabilities(probs, (200, 150))
    coarse = block_mean(image, 16)
    raw = S2CloudlessModel(postprocess=False).cloud_probability(coarse)
    raw_10m = S2CloudlessModel(postprocess=False).predict_proba(image, ModelContext(resolution=10))[
        1
    ]
    assert raw_10m[16 * 3 + 7 : 16 * 3 + 9, 16 * 5 + 7 : 16 * 5 + 9].mean() == pytest.approx(
        raw[3, 5], abs=0.02
    )  # the pixels around a block centre carry that block's probability


# ------------------------------------------------------------------------------ ukis-csmask
def test_ukis_band_choice_and_refusals() -> None:
    assert UkisCsmaskModel.for_bands(["B02", "B03", "B04", "B08", "B11"]).bands == UKIS_BANDS_4
    assert UkisCsmaskModel.for_bands(list(reversed(L1C_ORDER))).bands == UKIS_BANDS_6
    with pytest.raises(BandError, match="missing B08"):
        UkisCsmaskModel.for_bands(["B02", "B03", "B04"])
    with pytest.raises(BandError, match="expects 4 bands"):
        UkisCsmaskModel().predict_proba(np.zeros((3, 8, 8), np.float32), ModelContext())


@pytest.mark.peers
def test_ukis_network_refuses_tiles_larger_than_itself_and_predict_proba_tiles() -> None:
    pytest.importorskip("ukis_csmask")
    pytest.importorskip("onnxruntime")
    model = UkisCsmaskModel(native=True)
    image = np.full((4, 300, 256), 0.1, np.float32)
    with pytest.raises(ModelError, match="predict_proba"):
        model.class_probabilities(image, model.spec(ModelContext()))
    assert_probabilities(
        model.predict_proba(image, ModelContext()), (300, 256)
    )  # cut into 256 px tiles


@pytest.mark.peers
def test_ukis_small_tiles_with_nodata(chip1: np.ndarray) -> None:
    pytest.importorskip("ukis_csmask")
    pytest.importorskip("onnxruntime")
    tile = chip1[:, 100:190, 200:320].copy()
    tile[:, :5] = np.nan
    for model in (UkisCsmaskModel(), UkisCsmaskModel(native=True)):
        probs = model.predict_proba(tile, ModelContext(resolution=10, level="L2A"))
        assert_probabilities(probs, (90, 120))
        assert probs[3].max() > 0  # shadow is a class of ukis-csmask
    assert (probs[0, :5] < 1).any()  # at 10 m, no data is fed as 0 (the engine masks it)
    assert (UkisCsmaskModel().predict_proba(tile, ModelContext(resolution=10))[0, :5] == 1).all()


@pytest.mark.peers
def test_ukis_runs_at_30m_on_block_means_unless_native(chip1: np.ndarray) -> None:
    """At 10 m the network sees 3 x 3 block means (as ``@native`` would see a 30 m input)
    and the probabilities are interpolated back; the halo and alignment follow the blocks."""
    pytest.importorskip("ukis_csmask")
    pytest.importorskip("onnxruntime")
    image = chip1[:, :300, :330]
    at_30m = get_model("ukis-csmask", UKIS_BANDS_4)
    native = get_model("ukis-csmask@native", UKIS_BANDS_4)
    assert isinstance(native, UkisCsmaskModel) and native.name == "ukis-csmask@native"
    context = ModelContext(resolution=10, level="L2A")
    assert at_30m.internal_factor(context) == 3 and native.internal_factor(context) == 1
    assert at_30m.required_halo(context) == 66 * 3 and at_30m.required_alignment(context) == 3
    assert native.required_halo(context) == 64
    coarse = native.predict_proba(block_mean(image, 3), ModelContext(resolution=30, level="L2A"))
    expected = upsample_bilinear(coarse, 3, (300, 330))
    np.testing.assert_allclose(at_30m.predict_proba(image, context), expected, atol=1e-6)


@pytest.mark.peers
def test_ukis_at_30m_leaves_a_bright_desert_city_clear(real_data: Path) -> None:
    """The DSen2 Bahrain crop (L1C, cloud-free): the 6-band L1C network calls 15.7 % of it
    cloud at 10 m and 0.14 % at its recommended 30 m (measured)."""
    pytest.importorskip("ukis_csmask")
    pytest.importorskip("onnxruntime")
    from s2clouds.inference.window import predict_array
    from s2clouds.train.surfaces import read_dsen2

    image, bands = read_dsen2(real_data / "dsen2" / "S2B_MSIL1C_20200708_T39RVJ.npz")
    valid = np.all(np.isfinite(image), axis=0)
    context = ModelContext(resolution=10.0, level="L1C")
    false_cloud = {}
    for name in ("ukis-csmask", "ukis-csmask@native"):
        model = get_model(name, bands)
        assert model.bands == UKIS_BANDS_6
        probs = predict_array(model, image[[bands.index(b) for b in model.bands]], context)
        false_cloud[name] = float(np.mean(probs.argmax(0)[valid] == 1))
    assert false_cloud["ukis-csmask"] < 0.005
    assert false_cloud["ukis-csmask@native"] > 0.1


CHIP_CROP = (slice(None), slice(0, 384), slice(0, 384))  # 4 engine tiles, 9 ukis tiles


@pytest.fixture(scope="module")
def chip1_csm(chip1: np.ndarray) -> np.ndarray:
    """``CSmask(...).csm`` (384, 384) of the chip crop, run by ukis-csmask itself (L2A, 4 band)."""
    pytest.importorskip("onnxruntime")
    mask = pytest.importorskip("ukis_csmask.mask")
    image = np.moveaxis(chip1[CHIP_CROP], 0, -1).copy()
    result = mask.CSmask(image, band_order=["blue", "green", "red", "nir"], product_level="l2a")
    csm: np.ndarray = result.csm[..., 0]
    return csm


@pytest.mark.peers
def test_ukis_tile_probabilities_are_csmask_internals(
    chip1: np.ndarray, chip1_csm: np.ndarray
) -> None:
    """Through ukis-csmask's own tiling, our per-tile softmax reproduces ``CSmask.csm``."""
    utils = pytest.importorskip("ukis_csmask.utils")
    model = UkisCsmaskModel()
    spec = model.spec(ModelContext(level="L2A"))
    hwc = np.moveaxis(chip1[CHIP_CROP], 0, -1)
    tiles = utils.tile_array(hwc, xsize=256, ysize=256, overlap=0.2)
    probs = np.stack(
        [np.moveaxis(model.class_probabilities(np.moveaxis(t, -1, 0), spec), 0, -1) for t in tiles]
    )
    merged = utils.untile_array(probs, (*hwc.shape[:2], 3), overlap=0.2, smooth_blending=True)
    assert (merged.argmax(axis=-1) == chip1_csm).mean() >= 0.999


def test_ukis_through_the_engine_agrees_with_csmask(
    chip1: np.ndarray, chip1_csm: np.ndarray
) -> None:
    """Our tiling (256 px, feathered) vs ukis-csmask's own: tiling alone moves ~3 %.

    (ukis-csmask against itself on the chip shifted by 8-64 px agrees on 97.8-98.6 %.)
    """
    from s2clouds.inference.window import predict_array

    model = UkisCsmaskModel.for_bands(UKIS_BANDS_4, native=True)  # CSmask ran at 10 m too
    probs = predict_array(model, chip1[CHIP_CROP], ModelContext(resolution=10, level=None))  # L2A
    assert_probabilities(probs, (384, 384))
    ours = probs.argmax(axis=0)
    expected = np.array([0, 1, 3])[chip1_csm]  # ukis classes -> canonical
    assert (ours == expected).mean() >= 0.96
    assert set(np.unique(ours)) == {0, 1, 3}


@pytest.mark.peers
def test_ukis_six_band_l1c_network_finds_the_clouds(l1c_scene: dict[str, np.ndarray]) -> None:
    """The 6-band L1C network and s2cloudless 0.1's mask agree on cloud on a cloudy tile."""
    pytest.importorskip("ukis_csmask")
    pytest.importorskip("onnxruntime")
    model = UkisCsmaskModel.for_bands(L1C_ORDER)
    tile = select(l1c_scene, UKIS_BANDS_6)[:, :256, :256]
    probs = model.predict_proba(tile, ModelContext(resolution=10, level="L1C"))
    assert_probabilities(probs, (256, 256))
    assert model.spec(ModelContext(level="L1C")).version.endswith("6BL1C")
    cloud = probs.argmax(axis=0) == 1
    assert ((l1c_scene["cl_mask"][:256, :256] == 1) == cloud).mean() >= 0.9
