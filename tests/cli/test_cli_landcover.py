"""s2clouds landcover train / benchmark on the SEN12MS fixture (tiny sizes)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from s2clouds.cli.main import cli
from s2clouds.train.landcover import majority_label, patch_statistics


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), standalone_mode=False, terminal_width=200)
    assert result.exception is None, result.output
    return result.output


@pytest.fixture
def root(maker, tmp_path: Path) -> Path:
    folder = tmp_path / "sen12ms"
    maker("sen12ms").write(folder)
    return folder


def test_majority_label_and_patch_statistics() -> None:
    mask = np.array([[1, 1, 3], [3, 3, 9]], np.uint8)
    valid = np.array([[True, True, True], [False, False, True]])
    assert majority_label(mask, valid) == 1
    assert majority_label(mask, np.zeros_like(valid)) == 255
    stats = patch_statistics(np.arange(8, dtype=np.float32).reshape(2, 2, 2))
    assert stats.shape == (10,) and stats[0] == 1.5 and stats[5] == 5.5


@pytest.mark.parametrize(
    ("model", "task", "inputs"),
    [
        ("lightgbm", "single", "s2"),
        ("lightgbm", "dense", "s1s2"),
        ("resnet18", "single", "s1"),
        ("resnet18", "dense", "s2"),
    ],
)
def test_train_then_benchmark_with_a_report(
    root: Path, tmp_path: Path, model: str, task: str, inputs: str
) -> None:
    run = tmp_path / "run"
    out = invoke(
        "landcover",
        "train",
        str(root),
        "--out",
        str(run),
        "--model",
        model,
        "--task",
        task,
        "--input",
        inputs,
        "--epochs",
        "1",
        "--rounds",
        "3",
        "--batch-size",
        "4",
    )
    assert "trained" in out and (run / "landcover.json").is_file()
    report = tmp_path / "report"
    out = invoke("landcover", "benchmark", str(root), "--model", str(run), "--report", str(report))
    assert "OA, AA, kappa" in out
    (row,) = list(csv.DictReader((report / "summary.csv").open()))
    assert row["protocol"] == "sen12ms" and row["n_images"] == "6"
    assert 0.0 <= float(row["oa"]) <= 1.0 and row["aa"] != ""
    pixels = 6 if task == "single" else 6 * (32 * 32 - 3)  # 3 no-data pixels per patch
    assert int(row["n_pixels"]) == pixels
    per_image = list(csv.DictReader((report / "per_image.csv").open()))
    # the paper's merges: 36 (herbaceous croplands) is counted as 30 (herbaceous)
    assert not any(k.startswith("n_36_") for k in per_image[0])
    assert (report / "report.html").is_file()


def test_benchmark_refuses_a_folder_that_is_no_model(root: Path, tmp_path: Path) -> None:
    from s2clouds.errors import ModelError

    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        cli,
        ["landcover", "benchmark", str(root), "--model", str(tmp_path / "empty")],
        standalone_mode=False,
    )
    assert isinstance(result.exception, ModelError)


def test_single_label_on_tiles_as_the_paper(root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    invoke(
        "landcover",
        "train",
        str(root),
        "--out",
        str(run),
        "--tile",
        "16",
        "--rounds",
        "2",
        "-O",
        "seasons=spring,summer,winter",
    )
    report = tmp_path / "report"
    invoke("landcover", "benchmark", str(root), "--model", str(run), "--report", str(report))
    per_image = list(csv.DictReader((report / "per_image.csv").open()))
    assert len(per_image) == 6 * 4  # 32 px patches cut into four 16 px tiles
    assert per_image[0]["image_id"].endswith("_t0_0") and per_image[3]["image_id"].endswith("_t1_1")
