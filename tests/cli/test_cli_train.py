"""CLI: ``s2clouds models``, ``train``, ``export`` and ``predict --model <file>.onnx``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2clouds.cli.main import cli

RGBN = ["B02", "B03", "B04", "B08"]


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, standalone_mode=False)
    assert result.exception is None, f"{result.output}\n{result.exception!r}"
    return result.output


def test_models_lists_every_registered_model(monkeypatch) -> None:
    from s2clouds.models.registry import list_models

    monkeypatch.setenv("COLUMNS", "250")  # rich wraps long names in narrow tables
    output = invoke(["models"])
    for info in list_models():
        assert info.name in output
    assert "Apache-2.0" in output


def test_help_and_model_listing_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from s2clouds.cli.main import cli\n"
        "for args in (['--help'], ['train', '--help'], ['export', '--help'], ['models']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cli_architecture_choices_are_the_registered_architectures() -> None:
    pytest.importorskip("torch")
    from s2clouds.cli.train import ARCHITECTURE_NAMES, PIXEL_MODEL
    from s2clouds.train.architectures import ARCHITECTURES

    assert set(ARCHITECTURE_NAMES) == set(ARCHITECTURES) | {PIXEL_MODEL}


def test_pixel_model_trains_and_predicts_without_torch(
    maker: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    pytest.importorskip("lightgbm")
    chips = tmp_path / "chips"
    maker("chips").write(chips)
    scene = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=48)
    run, mask_path = tmp_path / "run", tmp_path / "mask.tif"
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from s2clouds.cli.main import cli\n"
        "def run(args):\n"
        "    r = CliRunner().invoke(cli, args, standalone_mode=False)\n"
        "    assert r.exception is None, (r.output, repr(r.exception))\n"
        "    print(r.output)\n"
        f"run(['train', '--dataset', 'chips', {str(chips)!r}, '--model', 'lightgbm-pixel',\n"
        f"     '--rounds', '5', '--out', {str(run)!r}, '--quiet'])\n"
        f"run(['predict', {str(scene)!r}, '-o', {str(mask_path)!r},\n"
        f"     '--model', {str(run / 'pixel.lgbm')!r}, '--quiet'])\n"
        "print('torch loaded:', 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"pixel model: {run / 'pixel.lgbm'}" in out.stdout
    assert "validation cloud BOA" in out.stdout
    assert "torch loaded: False" in out.stdout
    assert (run / "pixel.json").is_file() and (run / "metrics.json").is_file()
    with rasterio.open(mask_path) as ds:
        assert ds.read(1).shape == (48, 48) and ds.tags().get("MODEL") == str(run / "pixel.lgbm")


def test_train_export_and_predict_with_the_onnx_file(
    maker: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    root = maker("cloudsen12").write(tmp_path / "cloudsen12")
    run = tmp_path / "run"
    output = invoke(
        [
            "train",
            "--dataset",
            "cloudsen12",
            str(root),
            "--val-dataset",
            "cloudsen12",
            str(root),
            "-O",
            "split=train",
            "-O",
            "level=L2A",
            "-V",
            "split=val",
            "--model",
            "tiny-unet",
            "--bands",
            "B02,B03,B04,B08",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--crop",
            "64",
            "--out",
            str(run),
            "--name",
            "cli-tiny",
            "--quiet",
        ]
    )
    assert f"best checkpoint: {run / 'best.pt'}" in output
    assert (run / "metrics.csv").is_file() and (run / "curve.png").is_file()

    model_path = tmp_path / "cli-tiny.onnx"
    output = invoke(["export", str(run / "best.pt"), "-o", str(model_path), "--tile-size", "64"])
    assert "max probability difference" in output and model_path.with_suffix(".json").is_file()

    scene = maker("geotiff").write_band_folder(tmp_path / "scene", RGBN, size=96)
    mask_path = tmp_path / "mask.tif"
    output = invoke(
        ["predict", str(scene), "-o", str(mask_path), "--model", str(model_path), "--quiet"]
    )
    with rasterio.open(mask_path) as ds:
        mask = ds.read(1)
        assert ds.tags().get("MODEL") == str(model_path)
    assert mask.shape == (96, 96)
    assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3, 255}


def test_export_refuses_a_file_that_is_not_a_training_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    bogus = tmp_path / "x.pt"
    bogus.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(cli, ["export", str(bogus), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code != 0
    assert "not a readable checkpoint" in str(result.exception)


ALL_BANDS = [
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B10",
    "B11",
    "B12",
]


@pytest.mark.slow  # about 190 s on a shared machine (a UnetMobV2 export, predict and benchmark)
def test_published_unetmobv2_checkpoint_exports_then_predicts_and_benchmarks(
    maker: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    """A randomly initialised checkpoint with the layout of CloudSEN12's published UnetMobV2
    (Lightning .ckpt, ``model.`` prefixes, 13 L1C bands); nothing is downloaded."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("segmentation_models_pytorch")
    from s2clouds.train.architectures import build_model

    torch.manual_seed(0)
    state = {f"model.{k}": v for k, v in build_model("unet-mobilenetv2", 13).state_dict().items()}
    ckpt = tmp_path / "UNetMobV2_V2.ckpt"
    torch.save({"epoch": 1, "state_dict": state}, ckpt)
    model_path = tmp_path / "unetmobv2.onnx"
    refused = CliRunner().invoke(
        cli, ["export", str(ckpt), "-o", str(model_path), "--bands", ",".join(ALL_BANDS)]
    )
    assert refused.exit_code != 0 and getattr(refused.exception, "param", None) == "licence"
    output = invoke(
        [
            "export",
            str(ckpt),
            "-o",
            str(model_path),
            "--bands",
            ",".join(ALL_BANDS),
            "--licence",
            "CC BY 4.0",
            "--scheme",
            "cloudsen12",
            "--tile-size",
            "64",
        ]
    )
    assert "max probability difference" in output
    spec = __import__("json").loads(model_path.with_suffix(".json").read_text())
    assert spec["licence"] == "CC BY 4.0" and spec["bands"] == ALL_BANDS
    assert spec["architecture"] == "unet-mobilenetv2" and spec["mean"] == [0.0] * 13

    scene = maker("geotiff").write_band_folder(tmp_path / "scene", ALL_BANDS, size=64)
    mask_path = tmp_path / "mask.tif"
    invoke(["predict", str(scene), "-o", str(mask_path), "--model", str(model_path), "--quiet"])
    with rasterio.open(mask_path) as ds:
        assert set(np.unique(ds.read(1)).tolist()) <= {0, 1, 2, 3, 255}

    cmc = maker("cmc").write(tmp_path / "cmc")
    report = tmp_path / "report"
    invoke(["benchmark", str(cmc), "--models", str(model_path), "--report", str(report), "--quiet"])
    assert str(model_path) in (report / "summary.csv").read_text()
