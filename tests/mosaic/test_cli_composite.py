"""``s2clouds composite`` end to end (in process, the test scorer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from s2clouds.cli.main import cli, main

from .conftest import BANDS, clear_surface, make_series, write_tif


def _args(inputs: list[str], out: Path, *extra: str) -> list[str]:
    """A fast in-process composite of ``inputs`` into ``out`` (the test scorer, no model)."""
    return ["composite", *inputs, "-o", str(out), "--score", "test-blue", "--workers", "0", *extra]


def test_cli_end_to_end(tmp_path: Path) -> None:
    make_series(tmp_path / "in")
    listing = tmp_path / "list.txt"
    listing.write_text("in/*.tif\n")
    out = tmp_path / "out" / "c.tif"
    out.parent.mkdir()
    args = _args([f"@{listing}"], out, "--method", "medoid", "--block", "32", "--quiet")
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "c.info.tif",
        "c.json",
        "c.png",
        "c.tif",
    ]
    summary = json.loads((out.parent / "c.json").read_text())
    assert summary["method"] == "medoid" and len(summary["inputs"]) == 5
    with rasterio.open(out) as ds:
        assert ds.count == 4 and ds.dtypes[0] == "uint16" and ds.descriptions == BANDS
    with rasterio.open(out.parent / "c.info.tif") as ds:
        assert ds.descriptions == ("clear_count", "source_doy", "quality")


def test_cli_grid_option_and_summary_lines(tmp_path: Path) -> None:
    paths = make_series(tmp_path / "in", n=2)
    out = tmp_path / "c.tif"
    args = _args(list(map(str, paths)), out, "--grid", "EPSG:32633,20", "--method", "percentile:25")
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pixels without a clear observation" in result.output
    with rasterio.open(out) as ds:
        assert ds.res == (20.0, 20.0) and ds.shape == (20, 20)


def test_cli_errors_are_one_line_and_leave_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = make_series(tmp_path / "in", n=2)
    three = write_tif(tmp_path / "three.tif", clear_surface(7)[:3], bands=BANDS[:3])
    out = tmp_path / "c.tif"
    with pytest.raises(SystemExit) as exit_info:
        main(_args([*map(str, paths), str(three)], out, "--quiet"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "three.tif lacks band(s) B08" in err and "--drop-incomplete" in err
    assert not any(p.name.startswith("c.") for p in tmp_path.iterdir())
    with pytest.raises(SystemExit):
        main(["composite", str(paths[0]), "-o", str(out), "--method", "mode"])
    assert "unknown merge method 'mode'" in capsys.readouterr().err
    assert not any(p.name.startswith("c.") for p in tmp_path.iterdir())
