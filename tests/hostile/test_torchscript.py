"""TorchScript models (the CloudSEN12 family's ``.pt`` files) export through ``torch.jit.load``:
logits and probability outputs alike; the wrong bands, a non-segmentation output and a
TorchScript file given as a training checkpoint are refused with one line, nothing written."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from s2clouds.models.base import ModelContext  # noqa: E402
from s2clouds.models.registry import get_model_info  # noqa: E402
from s2clouds.train.architectures import build_model, is_torchscript  # noqa: E402

Refuse = Callable[[list[str]], str]
BANDS = "B02,B03,B04,B08"


class Softmaxed(torch.nn.Module):
    """A network whose output is already class probabilities."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(x), dim=1)


class Pooled(torch.nn.Module):
    """A classifier, not a segmentation network: one score vector per image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def scripted(tmp_path: Path, module: torch.nn.Module, name: str) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    module = module.eval()
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.script is deprecated"
        torch.jit.script(module).save(str(path))
    return path, module


def export_argv(path: Path, out: Path, bands: str = BANDS) -> list[str]:
    return ["export", str(path), "-o", str(out), "--bands", bands, "--licence", "CC BY 4.0"]


@pytest.mark.parametrize("wrap", [False, True], ids=["logits", "probabilities"])
def test_a_torchscript_model_exports_and_matches_torch(tmp_path: Path, wrap: bool) -> None:
    from s2clouds.cli.main import main

    network = build_model("tiny-unet", 4)
    path, module = scripted(tmp_path, Softmaxed(network) if wrap else network, "model.pt")
    assert is_torchscript(path)
    out = tmp_path / "model.onnx"
    try:
        main(export_argv(path, out))
    except SystemExit as done:
        assert done.code in (0, None)
    info = get_model_info(str(out))
    model = info.factory(info.bands)
    image = np.random.default_rng(1).uniform(0, 0.5, (4, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(image)[None])
        if not wrap:
            expected = torch.softmax(expected, dim=1)
    order = [0, 1, 2, 3]  # tiny-unet's channels are the cloudsen12 classes: 0 clear .. 3 shadow
    np.testing.assert_allclose(
        model.predict_proba(image, ModelContext(resolution=10.0)),
        expected[0, order].numpy(),
        atol=1e-4,
    )
    assert "torchscript" in model.spec.architecture


def test_torchscript_files_that_cannot_be_exported_are_refused(
    tmp_path: Path, refuse: Refuse, frozen: Callable[[Path], Callable[[], None]]
) -> None:
    path, _ = scripted(tmp_path, build_model("tiny-unet", 4), "cloudsen12-s2-l2a-1.0.0.pt")
    pooled, _ = scripted(tmp_path, Pooled(), "classifier.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:-200])
    check = frozen(tmp_path)
    out = tmp_path / "m.onnx"
    assert "does not run on 6 bands" in refuse(export_argv(path, out, BANDS + ",B11,B12"))
    assert "not per-pixel class scores" in refuse(export_argv(pooled, out))
    assert "is a TorchScript model" in refuse(["export", str(path), "-o", str(out)])
    assert "not a readable checkpoint" in refuse(export_argv(damaged, out))
    check()
    assert not out.exists()


def test_a_network_torch_cannot_export_is_one_line(
    tmp_path: Path, refuse: Refuse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(A scripted smp UnetMobV2 fails so: 'ScalarType UNKNOWN_SCALAR ...' in its loops.)"""
    path, _ = scripted(tmp_path, build_model("tiny-unet", 4), "scripted.pt")

    def fails(*args: object, **kwargs: object) -> None:
        print("Torch IR graph at exception: graph(...)")  # what the exporter dumps
        raise RuntimeError("prim_loop\nScalarType UNKNOWN_SCALAR is an unexpected type")

    monkeypatch.setattr(torch.onnx, "export", fails)
    message = refuse(export_argv(path, tmp_path / "m.onnx"))
    assert "torch cannot export this network to ONNX (ScalarType UNKNOWN_SCALAR" in message
    assert "traced one" in message
    assert not (tmp_path / "m.onnx").exists()
