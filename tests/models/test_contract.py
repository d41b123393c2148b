"""The contract every cloud model keeps: every registered model, and an exported ONNX model.

Shapes and dtype, probabilities in [0, 1] summing to one (also next to no-data pixels), band
mismatches refused, tiled prediction equal to a whole-array call, and (ONNX) onnxruntime equal
to torch. Peer models are skipped when their packages are not installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from s2clouds.errors import BandError, ModelError, UnknownNameError
from s2clouds.inference.window import predict_array
from s2clouds.models.base import N_CLASSES, CloudModel, ModelContext
from s2clouds.models.registry import ModelInfo, get_model_info, list_models

CONTEXT = ModelContext(resolution=10.0, level="L1C", sun_zenith=40.0, sun_azimuth=150.0)
ONNX_CASE = "exported-tiny-unet"
PIXEL_CASE = "saved-pixel-model"
#: python module each registered peer needs
PEER_MODULES = {
    "s2cloudless": "s2cloudless",
    "ukis-csmask": "ukis_csmask",
    "omnicloudmask": "omnicloudmask",
}
#: peers whose weights are not shipped: the environment variable that names them
LOCAL_WEIGHTS = {"omnicloudmask": "S2CLOUDS_OMNICLOUDMASK_WEIGHTS"}
CASES = [info.name for info in list_models()] + [ONNX_CASE, PIXEL_CASE]


def scene(bands: tuple[str, ...], size: int, seed: int = 0) -> np.ndarray:
    """(C, size, size) float32 reflectance: vegetation-like noise with a bright cloud block
    and a darker shadow block beside it."""
    rng = np.random.default_rng(seed)
    nir = {"B08", "B8A", "B07", "B06"}
    base = np.array([0.3 if b in nir else 0.06 for b in bands], np.float32)
    image = base[:, None, None] + rng.normal(0, 0.01, (len(bands), size, size)).astype(np.float32)
    q = size // 4
    image[:, q : 2 * q, q : 2 * q] = 0.55
    image[:, 2 * q : 3 * q, 2 * q : 3 * q] *= 0.4
    return np.clip(image, 0.001, 1.0)


@pytest.fixture(scope="session")
def exported_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """A randomly initialised tiny-unet (4 bands) exported to ONNX with 64 px tiles:
    ``(onnx path, torch network, spec)``."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from s2clouds.models.weights import WeightSpec
    from s2clouds.train.architectures import build_model, get_architecture, save_trained
    from s2clouds.train.export import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    network = build_model("tiny-unet", 4).eval()
    arch = get_architecture("tiny-unet")
    spec = WeightSpec(
        name="contract-tiny",
        architecture="tiny-unet",
        bands=("B02", "B03", "B04", "B08"),
        mean=(0.08, 0.08, 0.08, 0.25),
        std=(0.1, 0.1, 0.1, 0.12),
        tile_size=64,
        size_multiple=arch.size_multiple,
        halo=arch.halo,
        training_data="none (random initialisation, contract test)",
    )
    checkpoint = save_trained(folder / "best.pt", network, spec)
    result = export_onnx(checkpoint, folder / "contract.onnx")
    return result.onnx_path, network, result.spec


def scene_truth(size: int) -> np.ndarray:
    """Canonical mask (size, size) uint8 of :func:`scene`: clear, thick cloud, shadow."""
    truth = np.zeros((size, size), np.uint8)
    q = size // 4
    truth[2 * q : 3 * q, 2 * q : 3 * q] = 3
    truth[q : 2 * q, q : 2 * q] = 1
    return truth


@pytest.fixture(scope="session")
def saved_pixel_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pixel model fitted on :func:`scene` with 64 px tiles, saved as ``pixel.lgbm``."""
    pytest.importorskip("lightgbm")
    from s2clouds.models.pixel import PixelModel
    from s2clouds.train.pixel import PixelTrainConfig, fit_scribbles

    bands = ("B02", "B03", "B04", "B08")
    config = PixelTrainConfig(bands=bands, rounds=10, num_leaves=7, min_data_in_leaf=5)
    fitted = fit_scribbles(scene(bands, 96), scene_truth(96), bands, config=config)
    model = PixelModel(fitted.booster, fitted.spec.replace(tile_size=64, name="contract-pixel"))
    return model.save(tmp_path_factory.mktemp("pixel") / "pixel.lgbm")


@pytest.fixture
def case_info(request: pytest.FixtureRequest) -> ModelInfo:
    """The registry entry of the parametrised case (the ONNX file resolves by path)."""
    name: str = request.param
    if name == ONNX_CASE:
        path, _, _ = request.getfixturevalue("exported_onnx")
        return get_model_info(str(path))
    if name == PIXEL_CASE:
        return get_model_info(str(request.getfixturevalue("saved_pixel_model")))
    module = PEER_MODULES.get(name.split("@")[0])  # "ukis-csmask@native" needs ukis_csmask
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{name} needs the optional package {module}")
    weights_absent = name in LOCAL_WEIGHTS and not os.environ.get(LOCAL_WEIGHTS[name])
    if weights_absent and request.node.originalname != "test_a_missing_band_is_refused":
        pytest.skip(f"{name} needs its weights ({LOCAL_WEIGHTS[name]}); see test_omnicloud.py")
    return get_model_info(name)


def build(info: ModelInfo) -> CloudModel:
    if "ukis" in info.name and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("ukis-csmask needs onnxruntime")
    return info.factory(info.bands)


parametrize_cases: Callable[..., Any] = pytest.mark.parametrize(
    "case_info", CASES, indirect=True, ids=CASES
)


@parametrize_cases
def test_probabilities_have_the_contract_shape_and_sum_to_one(case_info: ModelInfo) -> None:
    model = build(case_info)
    assert isinstance(model, CloudModel)
    assert model.bands == case_info.bands and model.halo >= 0
    assert get_model_info(model.name).name == model.name  # batch engines rebuild by name
    # the optional members are declared on CloudModel, so every model has them
    assert model.required_halo(CONTEXT) >= model.halo
    assert model.tile_size is None or model.tile_size >= 0
    assert model.estimate_sun_angles is None or callable(model.estimate_sun_angles)
    image = scene(model.bands, 96)
    image[:, 5:9, 5:9] = np.nan
    probs = predict_array(model, image, CONTEXT)
    assert probs.shape == (N_CLASSES, 96, 96) and probs.dtype == np.float32
    assert np.all(np.isfinite(probs))
    assert probs.min() >= -1e-6 and probs.max() <= 1 + 1e-6
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-4)


@parametrize_cases
def test_a_missing_band_is_refused(case_info: ModelInfo) -> None:
    fewer = case_info.bands[1:]
    with pytest.raises(BandError, match=case_info.bands[0]):
        case_info.factory(fewer)


@parametrize_cases
def test_tiled_prediction_equals_a_whole_array_call(case_info: ModelInfo) -> None:
    model = build(case_info)
    image = scene(model.bands, 160, seed=1)
    try:
        whole = model.predict_proba(image, CONTEXT)
    except ModelError as exc:
        pytest.skip(f"{case_info.name} only runs on its own tiles: {exc}")
    tiled = predict_array(model, image, CONTEXT, tile=64, overlap=32)
    assert tiled.shape == whole.shape
    # exported tiny-unet on 64 px tiles, measured: mean 7e-5, max 0.01, argmax agrees 99.9%
    assert float(np.abs(tiled - whole).mean()) < 0.005
    assert float(np.mean(tiled.argmax(0) == whole.argmax(0))) > 0.98


def test_exported_model_really_tiles_and_matches_torch(
    exported_onnx: tuple[Path, Any, Any],
) -> None:
    torch_probabilities = pytest.importorskip("s2clouds.train.export").torch_probabilities
    path, network, spec = exported_onnx
    model = get_model_info(str(path)).factory(["B08", "B04", "B03", "B02", "B11"])
    assert model.tile_size == 64
    image = scene(model.bands, 96, seed=2)
    image[:, 0, :10] = np.nan
    expected = torch_probabilities(network, spec, image)
    np.testing.assert_allclose(model.predict_proba(image, CONTEXT), expected, atol=1e-4)


def test_exported_model_pads_odd_sizes_and_crops_back(exported_onnx: tuple[Path, Any, Any]) -> None:
    path, _, _ = exported_onnx
    model = get_model_info(str(path)).factory(["B02", "B03", "B04", "B08"])
    image = scene(model.bands, 64, seed=3)[:, :37, :50]
    probs = model.predict_proba(image, CONTEXT)
    assert probs.shape == (N_CLASSES, 37, 50)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-4)


def test_modified_onnx_weights_are_refused(
    exported_onnx: tuple[Path, Any, Any], tmp_path: Path
) -> None:
    path, _, _ = exported_onnx
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes() + b"\0")
    (tmp_path / "copy.json").write_text(path.with_suffix(".json").read_text())
    info = get_model_info(str(copy))
    with pytest.raises(ModelError, match="corrupt or modified weights"):
        info.factory(info.bands)


def test_unknown_model_names_and_missing_onnx_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="path to a saved model"):
        get_model_info("no-such-model")
    with pytest.raises(UnknownNameError, match="did you mean 's2cloudless'"):
        get_model_info("s2cloudles")
    assert get_model_info(" S2Cloudless ") is get_model_info("s2cloudless")  # one name rule
    with pytest.raises(ModelError, match="not found"):
        get_model_info(str(tmp_path / "absent.onnx"))


def test_receptive_radius_is_measured_once_per_weights_file(
    exported_onnx: tuple[Path, Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second model of the same file (as in a new process) reads the cached radius."""
    import json

    from s2clouds.models import onnx_model

    monkeypatch.setenv("S2CLOUDS_CACHE_DIR", str(tmp_path))
    calls: list[int] = []
    measure = onnx_model.measure_receptive_radius

    def counted(model: Any, multiple: int) -> int:
        calls.append(multiple)
        return measure(model, multiple)

    monkeypatch.setattr(onnx_model, "measure_receptive_radius", counted)
    path, _, _ = exported_onnx
    first = onnx_model.OnnxModel(path)
    radius = first.required_halo(CONTEXT)
    again = onnx_model.OnnxModel(path).required_halo(CONTEXT)
    assert radius == again > 0 and len(calls) == 1
    assert first.spec.sha256 is not None
    cached = json.loads(onnx_model.receptive_cache_path(first.spec.sha256).read_text())
    assert cached["radius"] == radius
