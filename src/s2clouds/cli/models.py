"""``s2clouds models``: the registered models, their bands, licences and limits."""

from __future__ import annotations

import click


@click.command("models")
def models() -> None:
    """List the registered models: name, bands they need, licence and notes.

    Saved models are used by path: s2clouds predict --model PATH.onnx (an exported network)
    or --model PATH.lgbm (a pixel model from s2clouds train --model lightgbm-pixel).
    """
    from rich.console import Console
    from rich.table import Table

    from s2clouds.models.registry import DEFAULT_MODEL, list_models

    table = Table(title="Registered models", show_lines=True)
    for column in ("name", "bands", "licence", "description and notes"):
        table.add_column(column, overflow="fold")
    for info in list_models():
        name = f"{info.name} (default)" if info.name == DEFAULT_MODEL else info.name
        notes = "\n".join([info.description, *(f"- {note}" for note in info.notes)])
        table.add_row(name, ",".join(info.bands), info.licence, notes)
    Console().print(table)
