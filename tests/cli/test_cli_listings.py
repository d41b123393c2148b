"""``s2clouds labels`` and ``s2clouds models`` listings stay readable."""

from __future__ import annotations

from click.testing import CliRunner

from s2clouds.cli.main import cli


def test_labels_correspondence_is_readable_at_80_columns() -> None:
    result = CliRunner().invoke(cli, ["labels"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "0 clear" in result.output and "255 no data" in result.output
    assert "sen2cor" in result.output and "…" not in result.output


def test_models_keeps_the_extras_of_install_hints() -> None:
    result = CliRunner().invoke(cli, ["models"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "s2clouds[peers]" in result.output


def test_models_says_which_model_an_input_gets(tmp_path, maker) -> None:
    from s2clouds.bands import L1C_BANDS

    make = maker("geotiff")
    folder = make.write_band_folder(tmp_path / "rgbn", ["B02", "B03", "B04", "B08"])
    result = CliRunner().invoke(cli, ["models", str(folder)])
    assert result.exit_code == 0, result.output
    assert "model: s2clouds-pixel-rgbn" in result.output
    stack = make.write_multiband(tmp_path / "all.tif", list(L1C_BANDS))
    for level, model in (("L1C", "s2clouds-pixel-l1c13"), ("L2A", "s2clouds-pixel-swir12")):
        result = CliRunner().invoke(cli, ["models", str(stack), "--level", level])
        assert result.exit_code == 0, result.output
        assert f"model: {model}" in result.output and f"level: {level}" in result.output
