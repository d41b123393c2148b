"""``s2clouds datasets info`` and ``s2clouds datasets show``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from s2clouds.cli.main import cli, main
from s2clouds.cli.options import parse_options


@pytest.fixture
def cloudsen12_root(maker, tmp_path: Path) -> Path:
    return maker("cloudsen12").write(tmp_path / "cloudsen12")


@pytest.fixture
def cmc_root(maker, tmp_path: Path) -> Path:
    return maker("cmc").write(tmp_path / "cmc")


def run(*args: str):
    result = CliRunner().invoke(cli, ["datasets", *args], catch_exceptions=False)
    return result


def test_info_prints_summary_and_full_histogram(cloudsen12_root: Path) -> None:
    result = run("info", str(cloudsen12_root), "-O", "split=test", "--max-samples", "10")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "cloudsen12" in out and "B8A" in out and "LABEL_manual_hq" in out
    for name in ("clear", "thick cloud", "thin cloud", "cloud shadow", "no data"):
        assert name in out
    assert "all 3 samples" in out
    # 3 patches of 512 x 512, each with 512**2 - 509**2 = 3063 pad pixels of no data
    assert "9,189" in out


def test_info_says_when_it_samples(cloudsen12_root: Path) -> None:
    result = run(
        "info",
        str(cloudsen12_root),
        "--kind",
        "cloudsen12",
        "-O",
        "split=test",
        "--max-samples",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "sampled 2 of 3 samples" in result.output


def test_info_on_the_catalogue_with_reader_options(cmc_root: Path) -> None:
    result = run("info", str(cmc_root), "-O", "bands=B02,B03,B04")
    assert result.exit_code == 0, result.output
    assert "cmc" in result.output and "3 of 4 scenes" in result.output and "B03" in result.output


def test_show_writes_a_png_atomically(cloudsen12_root: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "figs"
    out_dir.mkdir()
    output = out_dir / "sample.png"
    result = run(
        "show",
        str(cloudsen12_root),
        "1",
        "-o",
        str(output),
        "-O",
        "split=test",
        "--layers",
        "valid",
    )
    assert result.exit_code == 0, result.output
    assert output.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in out_dir.iterdir()] == ["sample.png"]


def test_show_refuses_an_index_out_of_range(cmc_root: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["datasets", "show", str(cmc_root), "9", "-o", str(tmp_path / "x.png")]
    )
    assert result.exit_code == 2
    assert "out of range" in result.output and "4 samples" in result.output


def test_library_errors_become_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["datasets", "info", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "does not look like any known dataset" in err and "Traceback" not in err


def test_unknown_reader_option_is_reported(
    cmc_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["datasets", "info", str(cmc_root), "-O", "split=test"])
    assert "its options are" in capsys.readouterr().err


def test_parse_options_types() -> None:
    assert parse_options(("split=train,val", "crop=true", "label=none", "max=3", "level=L2A")) == {
        "split": ["train", "val"],
        "crop": True,
        "label": None,
        "max": 3,
        "level": "L2A",
    }


def test_info_without_labels_says_there_is_no_histogram(cloudsen12_root: Path) -> None:
    result = run("info", str(cloudsen12_root), "-O", "split=val", "-O", "label=none")
    assert result.exit_code == 0, result.output
    assert "no canonical masks in the 1 samples read" in result.output


def test_show_with_fixed_stretch_and_an_extra_layer(cmc_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "cmc.png"
    result = run(
        "show", str(cmc_root), "0", "-o", str(output), "--stretch", "fixed", "--layers", "valid"
    )
    assert result.exit_code == 0, result.output
    assert output.stat().st_size > 1000


def test_show_a_temporal_series_with_layers_and_fixed_stretch(maker, tmp_path: Path) -> None:
    maker("temporal").write(tmp_path / "temporal")
    output = tmp_path / "series.png"
    result = run(
        "show",
        str(tmp_path / "temporal"),
        "2",
        "-o",
        str(output),
        "--layers",
        "valid,mask_canonical",
        "--stretch",
        "fixed",
    )
    assert result.exit_code == 0, result.output
    assert output.read_bytes()[:4] == b"\x89PNG"


def test_show_refuses_a_layer_a_temporal_sample_lacks(
    maker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    maker("temporal").write(tmp_path / "temporal")
    with pytest.raises(SystemExit):
        main(
            [
                "datasets",
                "show",
                str(tmp_path / "temporal"),
                "0",
                "-o",
                str(tmp_path / "x.png"),
                "--layers",
                "S1_VV",
            ]
        )
    err = capsys.readouterr().err
    assert "'S1_VV' is not a (T, 42, 42) layer" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "extra", [("--layers", "elevation"), ("-O", "layers=elevation"), ("--layers", "S1_VV,valid")]
)
def test_show_draws_a_stored_layer_named_once(
    cloudsen12_root: Path, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    output = tmp_path / "layer.png"
    result = run("show", str(cloudsen12_root), "0", "-o", str(output), "-O", "split=test", *extra)
    assert result.exit_code == 0, result.output
    assert output.stat().st_size > 1000
