"""The readers of the published layouts run through ``datasets info``, ``benchmark`` and
``train`` like every other reader."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from s2clouds.cli.main import cli

KINDS = ("sen12mscr-release", "sen12mscr-ts-release", "oncloudn")


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, standalone_mode=False, terminal_width=200)
    assert result.exception is None, (result.output, repr(result.exception))
    return result.output


@pytest.mark.parametrize("kind", KINDS)
def test_info_and_benchmark(kind: str, maker, tmp_path: Path) -> None:
    root = tmp_path / kind
    maker(kind).write(root)
    info = _run(["datasets", "info", str(root)])
    assert kind in info and "samples" in info
    report = tmp_path / "report"
    _run(["benchmark", str(root), "--models", "physical", "--report", str(report), "--quiet"])
    rows = list(csv.DictReader((report / "summary.csv").open()))
    cloud = next(r for r in rows if r["masker"] == "physical" and r["task"] == "cloud")
    assert int(cloud["n_images"]) > 0 and 0.0 <= float(cloud["median_boa"]) <= 1.0


def test_release_benchmark_takes_the_official_split(maker, tmp_path: Path) -> None:
    root = tmp_path / "cr"
    maker("sen12mscr-release").write(root)
    report = tmp_path / "report"
    _run(
        [
            "benchmark",
            str(root),
            "--models",
            "physical",
            "--report",
            str(report),
            "--quiet",
            "-O",
            "split=test",
        ]
    )
    rows = list(csv.DictReader((report / "summary.csv").open()))
    assert {r["n_images"] for r in rows if r["masker"] == "physical"} == {"1"}


@pytest.mark.parametrize("kind", KINDS)
def test_pixel_model_trains_on_it(kind: str, maker, tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    root = tmp_path / kind
    maker(kind).write(root)
    run = tmp_path / "run"
    code = (
        "from click.testing import CliRunner\n"
        "from s2clouds.cli.main import cli\n"
        f"r = CliRunner().invoke(cli, ['train', '--dataset', {kind!r}, {str(root)!r}, '--model',"
        f" 'lightgbm-pixel', '--rounds', '3', '--out', {str(run)!r}, '--quiet'],"
        " standalone_mode=False)\n"
        "assert r.exception is None, (r.output, repr(r.exception))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    spec = json.loads((run / "pixel.json").read_text())
    assert spec and (run / "pixel.lgbm").is_file()
