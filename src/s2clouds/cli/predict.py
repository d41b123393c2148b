"""``s2clouds predict``: cloud and shadow masks for a scene."""

from __future__ import annotations

from pathlib import Path

import click

from s2clouds.cli.options import bands_option, level_option, resolution_option, scale_option


@click.command("predict")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="Output mask (COG .tif)."
)
@resolution_option
@click.option(
    "--model", default=None, help="Model name (see 's2clouds models'); default: physical."
)
@click.option(
    "--probabilities", is_flag=True, help="Also write per-class probabilities (<OUT>.proba.tif)."
)
@bands_option
@level_option
@scale_option
@click.option(
    "--quicklook",
    type=click.Path(path_type=Path),
    default=None,
    help="Write an RGB PNG with the mask overlaid.",
)
@click.option(
    "--block",
    type=int,
    default=1024,
    show_default=True,
    help="Window edge (px) processed at once; bounds memory.",
)
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def predict(
    source: Path,
    output: Path,
    resolution: str | None,
    model: str | None,
    probabilities: bool,
    bands: tuple[str, ...] | None,
    level: str | None,
    scale: str | None,
    quicklook: Path | None,
    block: int,
    quiet: bool,
) -> None:
    """Predict a canonical mask (0 clear, 1 thick cloud, 2 thin cloud, 3 shadow, 255 no data).

    SOURCE is a Sentinel-2 .SAFE folder or .zip, a multi-band GeoTIFF/COG, or a folder of
    single-band files named by band (B02.tif, B03.tif, ...).
    """
    from s2clouds.inference.predict import PredictOptions
    from s2clouds.inference.predict import predict as run_predict
    from s2clouds.models.registry import DEFAULT_MODEL

    options = PredictOptions(
        model=model or DEFAULT_MODEL,
        resolution=float(resolution) if resolution else None,
        bands=bands,
        level=level.upper() if level else None,
        scale=scale,
        block=block,
        probabilities=probabilities,
        quicklook=quicklook,
        progress=not quiet,
    )
    result = run_predict(source, output, options)
    if quiet:
        return
    shares = ", ".join(
        f"{name} {100 * share:.1f}%" for name, share in result.class_fractions.items()
    )
    click.echo(
        f"{result.output}: {result.shape[1]} x {result.shape[0]} px at {result.resolution:g} m, "
        f"model {result.model}, {result.seconds:.1f} s"
    )
    click.echo(f"  {shares} (of valid pixels; valid {100 * result.valid_fraction:.1f}%)")
    for extra in (result.probabilities, result.quicklook):
        if extra is not None:
            click.echo(f"  wrote {extra}")
