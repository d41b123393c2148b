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
