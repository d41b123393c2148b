"""``s2clouds models``: the registered models, their bands, licences and limits, and which
model the default (``auto``) gives an input."""

from __future__ import annotations

import click

from s2clouds.cli.options import bands_option, level_option


@click.command("models")
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path())
@bands_option
@level_option
def models(input_path: str | None, bands: tuple[str, ...] | None, level: str | None) -> None:
    """List the registered models: name, bands they need, licence and notes.

    With INPUT (a SAFE product, GeoTIFF, band folder or STAC item), say which model the
    default 'auto' picks for it from its bands and processing level, and why.
    --model on predict and benchmark overrides the choice.

    Saved models are used by path: s2clouds predict --model PATH.onnx (an exported network)
    or --model PATH.lgbm (a pixel model from s2clouds train --model lightgbm-pixel).
    """
    if input_path is not None:
        _explain_choice(input_path, bands, level)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from s2clouds.models.registry import DEFAULT_MODEL, list_models

    table = Table(title="Registered models", show_lines=True)
    for column in ("name", "bands", "licence", "description and notes"):
        table.add_column(column, overflow="fold")
    for info in list_models():
        name = f"{info.name} (default)" if info.name == DEFAULT_MODEL else info.name
        notes = "\n".join([info.description, *(f"- {note}" for note in info.notes)])
        # escaped: 'pip install "s2clouds[pixel]"' is text, not rich markup
        table.add_row(escape(name), ",".join(info.bands), escape(info.licence), escape(notes))
    Console().print(table)


def _explain_choice(path: str, bands: tuple[str, ...] | None, level: str | None) -> None:
    """Print the model ``auto`` picks for the input at ``path`` and why."""
    from s2clouds.io.scenes import read_scene
    from s2clouds.models.registry import choose_model

    scene = read_scene(path, bands=bands, level=level)  # STAC items too
    choice = choose_model(scene.bands, scene.level)
    click.echo(f"input: {path}")
    click.echo(f"  bands: {', '.join(scene.bands)}; level: {scene.level or 'unknown'}")
    click.echo(f"model: {choice.model} ({choice.why})")
