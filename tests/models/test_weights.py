"""Weight specs: JSON round trip, input checks, checksums and sidecars (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from s2clouds.errors import BandError, LabelSchemeError, ModelError, RadiometryError
from s2clouds.models.weights import (
    CANONICAL_CLASS_NAMES,
    WeightSpec,
    pad_to_multiple,
    read_sidecar,
    same_contract,
    sha256_file,
    sidecar_path,
    verify_weights,
    write_sidecar,
)


def make_spec(**changes: object) -> WeightSpec:
    values: dict[str, object] = {
        "name": "test-model",
        "architecture": "tiny-unet",
        "bands": ("blue", "B3", "B04", "nir"),
        "mean": (0.1, 0.1, 0.1, 0.3),
        "std": (0.05, 0.05, 0.06, 0.1),
        "training_data": "unit test",
        "licence": "CC0-1.0",
        "notes": ("note",),
    }
    values.update(changes)
    return WeightSpec(**values)  # type: ignore[arg-type]


def test_bands_are_canonicalised_and_json_round_trips() -> None:
    spec = make_spec(sha256="ab" * 32)
    assert spec.bands == ("B02", "B03", "B04", "B08")
    assert spec.classes == CANONICAL_CLASS_NAMES
    again = WeightSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["bands"] == ["B02", "B03", "B04", "B08"]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"mean": (0.1, 0.1)}, ModelError, "one value per band"),
        ({"std": (0.1, 0.1, 0.0, 0.1)}, ModelError, "std positive"),
        ({"scaling": "dn"}, ModelError, "scaling 'dn'"),
        ({"bands": ("B02", "B02", "B03", "B04")}, BandError, "given twice"),
        ({"label_scheme": "nope"}, LabelSchemeError, "unknown label scheme"),
        ({"classes": ("a", "b", "c", "d")}, ModelError, "canonical model outputs"),
        ({"tile_size": 0}, ModelError, "tile_size"),
    ],
)
def test_inconsistent_specs_are_refused(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make_spec(**changes)


def test_unknown_or_missing_fields_are_refused() -> None:
    data = make_spec().to_dict()
    with pytest.raises(ModelError, match="unknown fields"):
        WeightSpec.from_dict(data | {"future": 1})
    del data["mean"]
    with pytest.raises(ModelError, match="incomplete"):
        WeightSpec.from_dict(data)
    with pytest.raises(ModelError, match="not valid JSON"):
        WeightSpec.from_json("{")


def test_check_bands_gives_positions_and_names_what_is_missing() -> None:
    spec = make_spec()
    assert spec.check_bands(["B08", "B04", "B03", "B02", "B11"]) == [3, 2, 1, 0]
    with pytest.raises(BandError, match=r"needs the bands B02, B03, B04, B08.*lacks B08"):
        spec.check_bands(["B02", "B03", "B04"])


def test_check_image_refuses_wrong_band_count_and_digital_numbers() -> None:
    spec = make_spec()
    with pytest.raises(BandError, match="expects 4 bands"):
        spec.check_image(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(RadiometryError, match="needs reflectance"):
        spec.check_image(np.full((4, 8, 8), 1500.0, np.float32))
    spec.check_image(np.full((4, 8, 8), 0.2, np.float32))


def test_normalise_uses_mean_std_and_zeroes_nodata() -> None:
    spec = make_spec()
    image = np.full((4, 2, 3), 0.2, np.float32)
    image[:, 0, 0] = np.nan
    out = spec.normalise(image)
    assert out.dtype == np.float32 and out.shape == (4, 2, 3)
    np.testing.assert_allclose(out[:, 1, 1], [2.0, 2.0, 100 / 6 / 10, -1.0], rtol=1e-5)
    assert np.all(out[:, 0, 0] == 0)


@pytest.mark.parametrize(("h", "w"), [(5, 7), (16, 16), (1, 3), (33, 20)])
def test_pad_to_multiple_reflects_and_crops_back(h: int, w: int) -> None:
    image = np.arange(2 * h * w, dtype=np.float32).reshape(2, h, w)
    padded = pad_to_multiple(image, 16)
    assert padded.shape[1] % 16 == 0 and padded.shape[2] % 16 == 0
    np.testing.assert_array_equal(padded[:, :h, :w], image)
    if h > 1 and padded.shape[1] > h:
        np.testing.assert_array_equal(padded[:, h, :w], image[:, h - 2])  # reflection


def test_sidecar_carries_the_checksum_and_verification_refuses_changes(tmp_path: Path) -> None:
    weights = tmp_path / "model.onnx"
    weights.write_bytes(b"weights-bytes")
    path = write_sidecar(make_spec(), weights)
    assert path == sidecar_path(weights) == tmp_path / "model.json"
    spec = read_sidecar(weights)
    assert spec.sha256 == sha256_file(weights)
    assert same_contract(spec, make_spec())
    verify_weights(weights, spec)
    weights.write_bytes(b"weights-bytez")
    with pytest.raises(ModelError, match="corrupt or modified weights"):
        verify_weights(weights, spec)


def test_missing_sidecar_and_weights_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="keep the .json"):
        read_sidecar(tmp_path / "model.onnx")
    with pytest.raises(ModelError, match="not found"):
        verify_weights(tmp_path / "model.onnx", make_spec())
