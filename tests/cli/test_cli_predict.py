from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from s2clouds.cli.main import cli, main

CHIPS = ["oncloudn_chip1", "oncloudn_chip2", "oncloudn_chip3"]


def _cloud_boa(pred: np.ndarray, truth: np.ndarray) -> float:
    valid = truth != 255
    p, t = np.isin(pred, (1, 2))[valid], (truth == 1)[valid]
    tpr = (p & t).sum() / max(t.sum(), 1)
    tnr = (~p & ~t).sum() / max((~t).sum(), 1)
    return float((tpr + tnr) / 2)


@pytest.mark.parametrize("chip", CHIPS)
def test_predict_real_chip_end_to_end(chip: str, real_data: Path, tmp_path: Path) -> None:
    out, ql = tmp_path / "mask.tif", tmp_path / "ql.png"
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            str(real_data / chip),
            "-o",
            str(out),
            "--probabilities",
            "--quicklook",
            str(ql),
        ],
        standalone_mode=False,
    )
    assert result.exception is None, result.output
    assert "cloud shadow" in result.output
    with rasterio.open(out) as ds, rasterio.open(real_data / chip / "label.tif") as ref:
        assert ds.crs == ref.crs and ds.transform == ref.transform
        pred, truth = ds.read(1), ref.read(1)
    with rasterio.open(tmp_path / "mask.proba.tif") as ds:
        assert ds.count == 4 and ds.descriptions[3] == "p_cloud_shadow"
        assert np.all(np.abs(ds.read().astype(int).sum(axis=0) - 100) <= 2)
    assert ql.stat().st_size > 10_000
    # default model measured 0.83 / 0.84 / 0.88 (physical: 0.80 / 0.82 / 0.86); guard regressions
    assert _cloud_boa(pred, truth) > 0.75


def test_predict_at_20m_halves_the_grid(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m20.tif"
    main(["predict", str(real_data / CHIPS[0]), "-o", str(out), "--resolution", "20", "--quiet"])
    with rasterio.open(out) as ds:
        assert ds.shape == (256, 256) and ds.res == (20.0, 20.0)


def test_clear_errors_and_exit_codes(tmp_path: Path, maker, capsys) -> None:
    cases = [
        (["predict", str(tmp_path / "missing"), "-o", str(tmp_path / "o.tif")], "input not found"),
        (
            [
                "predict",
                str(maker("geotiff").write_band_folder(tmp_path / "s", ["B02", "B03", "B04"])),
                "-o",
                str(tmp_path / "o.tif"),
            ],
            "no model fits an input with the bands B02, B03, B04",
        ),
        (
            [
                "predict",
                str(
                    maker("geotiff").write_band_folder(tmp_path / "t", ["B02", "B03", "B04", "B08"])
                ),
                "-o",
                str(tmp_path / "nodir" / "o.tif"),
            ],
            "does not exist",
        ),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_wrong_scale_is_refused(tmp_path: Path, maker, capsys) -> None:
    path = maker("geotiff").write_multiband(tmp_path / "s.tif", ["B02", "B03", "B04", "B08"])
    with pytest.raises(SystemExit):
        main(["predict", str(path), "-o", str(tmp_path / "o.tif"), "--scale", "reflectance"])
    assert "unscaled digital numbers" in capsys.readouterr().err


def test_version_and_labels() -> None:
    runner = CliRunner()
    assert "0.1.0" in runner.invoke(cli, ["--version"]).output
    listing = runner.invoke(cli, ["labels"], terminal_width=250).output
    assert "sen2cor" in listing and "Correspondence" in listing
