"""``s2clouds annotate``: turn scribbles on a scene into a full mask (pixel model, no torch)."""

from __future__ import annotations

from pathlib import Path

import click

from s2clouds.cli.options import (
    bands_option,
    level_option,
    parse_bands,
    quiet_option,
    resolution_option,
    scale_option,
)


@click.command("annotate")
@click.argument("source")
@click.option(
    "--scribbles",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Single-band raster on the scene's grid: class values where you labelled, 255 elsewhere.",
)
@click.option(
    "--scheme",
    default="canonical",
    show_default=True,
    help="Label scheme of the scribbles (see 's2clouds labels').",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Mask .tif.")
@click.option(
    "--use-bands",
    callback=parse_bands,
    default="B02,B03,B04,B08",
    show_default=True,
    help="Bands the pixel model learns from (add B11, B12, ... when the scene has them).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--save-model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keep the fitted model (.lgbm) to mask other scenes with --model.",
)
@resolution_option
@bands_option
@level_option
@scale_option
@click.option("--probabilities", is_flag=True, help="Also write <OUT>.proba.tif.")
@click.option("--quicklook", type=click.Path(path_type=Path), default=None, help="RGB PNG.")
@quiet_option
def annotate(
    source: str,
    scribbles: Path,
    scheme: str,
    output: Path,
    use_bands: tuple[str, ...],
    rounds: int,
    save_model: Path | None,
    resolution: str | None,
    bands: tuple[str, ...] | None,
    level: str | None,
    scale: str | None,
    probabilities: bool,
    quicklook: Path | None,
    quiet: bool,
) -> None:
    """Fit a pixel model on the SCRIBBLES drawn over SOURCE and write SOURCE's full mask.

    Label a few strokes per class (clear, thick cloud, thin cloud, shadow) in any image
    editor or GIS on the scene's grid, run this, inspect the mask, add strokes where it is
    wrong, run again: the interactive loop of the IRIS annotation tool.
    """
    from s2clouds.inference.options import OutputOptions, PredictOptions, ReadOptions
    from s2clouds.labels import CANONICAL_CLASSES
    from s2clouds.train.annotate import annotate as run_annotation

    options = PredictOptions(
        read=ReadOptions(
            bands=bands,
            level=level.upper() if level else None,
            scale=scale,
            resolution=float(resolution) if resolution else None,
        ),
        output=OutputOptions(probabilities=probabilities, quicklook=quicklook),
        progress=not quiet,
    )
    result = run_annotation(
        source,
        scribbles,
        output,
        scheme=scheme,
        bands=use_bands,
        rounds=rounds,
        model_path=save_model,
        options=options,
    )
    strokes = ", ".join(f"{CANONICAL_CLASSES[c]} {n}" for c, n in result.scribbled.items())
    click.echo(f"fitted on scribbled pixels: {strokes}")
    shares = ", ".join(f"{k} {v:.1%}" for k, v in result.prediction.class_fractions.items())
    click.echo(f"wrote {result.prediction.output} ({shares})")
    if result.model_path:
        click.echo(f"model: {result.model_path} (use it with --model)")
