"""``s2clouds labels``: list label schemes, show the correspondence table, translate rasters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.group("labels", invoke_without_command=True)
@click.pass_context
def labels(ctx: click.Context) -> None:
    """List the label schemes and print their correspondence with the canonical scheme."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from s2clouds.labels import SCHEMES, correspondence_table

    console = Console()
    schemes = Table(title="Label schemes")
    for column in ("name", "title", "values", "lossy merges"):
        schemes.add_column(column)
    for scheme in SCHEMES.values():
        schemes.add_row(
            scheme.name, scheme.title, ", ".join(map(str, scheme.classes)), "\n".join(scheme.lossy)
        )
    console.print(schemes)
    console.print(_correspondence(correspondence_table()))


def _correspondence(rows: list[dict[str, str]]) -> Any:
    """The correspondence table with a row per scheme and a column per canonical class, so
    that it stays readable at 80 columns (5 class columns, not one per scheme)."""
    from rich.table import Table

    table = Table(title="Correspondence with the canonical scheme", show_lines=True)
    table.add_column("scheme", overflow="fold")
    for row in rows:
        table.add_column(row["canonical"], overflow="fold")
    for scheme in [k for k in rows[0] if k != "canonical"]:
        table.add_row(scheme, *(row[scheme] or "-" for row in rows))
    return table


@labels.command("translate")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--from", "from_scheme", required=True, help="Scheme of the input raster (e.g. sen2cor)."
)
@click.option("--to", "to_scheme", required=True, help="Scheme to write (e.g. canonical, fmask).")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="Output raster (COG)."
)
@click.option(
    "--unknown",
    type=click.Choice(["error", "nodata"]),
    default="error",
    show_default=True,
    help="What to do with values the input scheme does not define.",
)
def translate(source: Path, from_scheme: str, to_scheme: str, output: Path, unknown: str) -> None:
    """Translate the label raster SOURCE from one scheme to another, keeping its georeference."""
    from s2clouds.io.labels import translate_raster

    written = translate_raster(source, output, from_scheme, to_scheme, unknown=unknown)
    click.echo(f"wrote {written}")
