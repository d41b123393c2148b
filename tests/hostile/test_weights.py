"""No weights run unverified: a modified model is refused whether its sidecar spec is
intact, deleted or has a null checksum, and every spec field is bounded (a hostile spec
cannot make inference allocate without limit)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from s2clouds.errors import ModelError
from s2clouds.models.builtin import WEIGHTS_DIR
from s2clouds.models.weights import WeightSpec, read_sidecar, sha256_file, sidecar_path

pytest.importorskip("onnxruntime")

from s2clouds.models.onnx_model import OnnxModel  # noqa: E402

RGBN = ["B02", "B03", "B04", "B08"]
Refuse = Callable[[list[str]], str]
SHIPPED = WEIGHTS_DIR / "s2clouds-tiny-rgbn.onnx"  # the shipped ONNX network


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The shipped network and its sidecar, copied (never touch the package's files)."""
    target = tmp_path / "model.onnx"
    shutil.copyfile(SHIPPED, target)
    shutil.copyfile(sidecar_path(SHIPPED), sidecar_path(target))
    return target


def modify(path: Path) -> None:
    """Change one byte near the end (inside the weights) of ``path``."""
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))


def test_shipped_weights_carry_a_checksum_that_matches() -> None:
    for weights in sorted(WEIGHTS_DIR.iterdir()):
        if weights.suffix in (".onnx", ".lgbm"):
            spec = read_sidecar(weights)
            assert spec.sha256 == sha256_file(weights), weights.name


@pytest.mark.parametrize("sidecar", ["intact", "deleted", "null sha256"])
def test_a_modified_model_is_refused(copy: Path, sidecar: str) -> None:
    modify(copy)
    spec_file = sidecar_path(copy)
    if sidecar == "deleted":
        spec_file.unlink()
    elif sidecar == "null sha256":
        spec_file.write_text(json.dumps(json.loads(spec_file.read_text()) | {"sha256": None}))
    message = "corrupt or modified" if sidecar == "intact" else "cannot be verified"
    with pytest.raises(ModelError, match=message):
        OnnxModel(copy)


def test_a_model_without_spec_is_refused_on_the_command_line(
    copy: Path, tmp_path: Path, maker, refuse: Refuse, frozen
) -> None:
    sidecar_path(copy).unlink()
    scene = maker("geotiff").write_multiband(tmp_path / "scene.tif", RGBN, size=64)
    check = frozen(tmp_path)
    err = refuse(["predict", str(scene), "-o", str(tmp_path / "m.tif"), "--model", str(copy)])
    assert "cannot be verified" in err and "model.json" in err
    check()


@pytest.mark.parametrize(
    "change",
    [
        {"size_multiple": 50000},
        {"tile_size": 10**9},
        {"tile_size": "512"},
        {"halo": -1},
        {"stride": 1.5},
        {"mean": "abc"},
        {"mean": [1e300, 0, 0, 0]},
        {"std": [0, 1, 1, 1]},
        {"bands": 5},
        {"sha256": "not-a-digest"},
        {"name": ["x"]},
        {"resolution": "ten"},
    ],
)
def test_every_spec_field_is_bounded(change: dict[str, object]) -> None:
    data = json.loads(sidecar_path(SHIPPED).read_text()) | change
    with pytest.raises(ModelError):
        WeightSpec.from_json(json.dumps(data))
