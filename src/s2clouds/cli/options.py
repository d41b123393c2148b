"""Options shared by several subcommands."""

from __future__ import annotations

import click

from s2clouds.bands import canonical_band_names


def parse_bands(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    """``B02,B03,B04,B08`` (any spelling, comma or space separated) -> canonical names."""
    if not value:
        return None
    names = [v for v in value.replace(",", " ").split() if v]
    return canonical_band_names(names)


bands_option = click.option(
    "--bands",
    callback=parse_bands,
    default=None,
    help="Band names: for a multi-band GeoTIFF, the names of its bands in file order; "
    "for SAFE products and band folders, the bands to use. E.g. B02,B03,B04,B08.",
)
resolution_option = click.option(
    "--resolution",
    type=click.Choice(["10", "20", "60"]),
    default=None,
    help="Output grid resolution in metres (default: the finest input band).",
)
scale_option = click.option(
    "--scale",
    type=click.Choice(["dn", "reflectance"]),
    default=None,
    help="How pixel values are stored: 'dn' (integers / 10000, with the baseline offset read "
    "from SAFE metadata) or 'reflectance' (0-1). Default: guessed from the data type.",
)
level_option = click.option(
    "--level",
    type=click.Choice(["L1C", "L2A"], case_sensitive=False),
    default=None,
    help="Processing level of the input (checked against SAFE metadata).",
)
