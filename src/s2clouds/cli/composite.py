"""``s2clouds composite``: one cloud-free image from many acquisitions."""

from __future__ import annotations

from pathlib import Path

import click

from s2clouds.cli.options import (
    FiniteFloatRange,
    bands_option,
    cluster_options,
    level_option,
    quiet_option,
    scale_option,
)
from s2clouds.cli.params import library_reports, with_flags
from s2clouds.io.limits import MAX_OUTPUT_PIXELS
from s2clouds.mosaic.composite import CompositeOptions

#: the library's defaults, shown by --help
DEFAULTS = CompositeOptions()


def parse_grid(
    ctx: click.Context, param: click.Parameter, text: str | None
) -> tuple[str, float] | None:
    """``--grid EPSG:32633,10`` -> (``"EPSG:32633"``, 10.0); the library checks the value."""
    if not text:
        return None
    crs, sep, res = text.rpartition(",")
    try:
        resolution = float(res)
    except ValueError:
        sep = ""
    if not sep or not crs:
        raise click.BadParameter(f"{text!r} is not CRS,RESOLUTION (e.g. EPSG:32633,10)")
    return crs, resolution


def parse_bounds(
    ctx: click.Context, param: click.Parameter, text: str | None
) -> tuple[float, float, float, float] | None:
    """``--bounds W,S,E,N`` -> four floats; the library checks that they are finite and
    ordered."""
    if not text:
        return None
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not W,S,E,N (four numbers)") from exc
    return west, south, east, north


@click.command("composite")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Composite COG (.tif); OUT.info.tif, OUT.png and OUT.json are written beside it.",
)
@click.option(
    "--method",
    default=DEFAULTS.method,
    show_default=True,
    help="best | medoid | ranked (SEN12MS: whole images by share of poor pixels) | median | "
    "percentile:P | mean (quality-weighted).",
)
@click.option(
    "--grid",
    "grid",
    callback=parse_grid,
    default=None,
    metavar="CRS,RES",
    help="Target CRS and resolution, e.g. EPSG:32633,10 (default: the first input's CRS at "
    "the finest input resolution, over the union of the footprints).",
)
@click.option(
    "--like",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Copy the grid (CRS, transform, size) of this raster.",
)
@click.option(
    "--bounds",
    callback=parse_bounds,
    default=None,
    metavar="W,S,E,N",
    help="Target extent in the target CRS.",
)
@bands_option
@level_option
@scale_option
@click.option(
    "--model",
    default=DEFAULTS.model,
    show_default=True,
    help="Masker whose probabilities score the pixels (see 's2clouds models').",
)
@click.option(
    "--score",
    "scorer",
    default=DEFAULTS.scorer,
    show_default=True,
    help="Quality scorer: probability, clear-probability, sen12ms (no model).",
)
@click.option(
    "--min-quality",
    type=FiniteFloatRange(0, 1),
    default=DEFAULTS.min_quality,
    show_default=True,
    help="Quality from which an observation counts as clear.",
)
@click.option(
    "--distance-cap",
    type=FiniteFloatRange(min=0),
    default=DEFAULTS.distance_cap,
    show_default=True,
    help="Metres from a cloud or shadow beyond which distance no longer raises quality.",
)
@click.option(
    "--drop-incomplete",
    is_flag=True,
    help="Leave out (with a warning) inputs that lack a band or miss the grid, instead of "
    "refusing the run.",
)
@click.option(
    "--block",
    type=click.IntRange(min=32),
    default=DEFAULTS.block,
    show_default=True,
    help="Window edge (px); memory grows with block^2 x number of inputs.",
)
@cluster_options
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=MAX_OUTPUT_PIXELS,
    show_default=True,
    help="Largest target grid (pixels); a larger one (whole-world --bounds, a 1 cm --grid, "
    "inputs far apart) is refused before any work.",
)
@click.option("--no-resume", is_flag=True, help="Recompute windows saved by an interrupted run.")
@click.option("--no-quicklook", is_flag=True, help="Do not write OUT.png.")
@quiet_option
def composite(
    inputs: tuple[str, ...],
    output: Path,
    method: str,
    grid: tuple[str, float] | None,
    like: Path | None,
    bounds: tuple[float, float, float, float] | None,
    bands: tuple[str, ...] | None,
    level: str | None,
    scale: str | None,
    model: str,
    scorer: str,
    min_quality: float,
    distance_cap: float,
    drop_incomplete: bool,
    block: int,
    workers: int | None,
    threads: bool,
    scheduler: str | None,
    max_pixels: int,
    no_resume: bool,
    no_quicklook: bool,
    quiet: bool,
) -> None:
    """Merge INPUTS (paths, globs, @LIST files, STAC item JSONs or folders of them) into one
    cloud-free composite on one grid.

    Each pixel of each acquisition gets a quality score from the masker's probabilities and
    the distance to the nearest cloud or shadow; observations of quality >= --min-quality are
    clear. best and medoid keep one acquisition's whole spectrum per pixel; median,
    percentile:P and mean combine the clear observations band by band. Pixels without a clear
    observation are no data (counted in OUT.json).
    """
    from s2clouds.inference.distributed import ClusterOptions
    from s2clouds.mosaic.composite import run_composite
    from s2clouds.mosaic.merge import parse_method
    from s2clouds.mosaic.warp import GridRequest

    parse_method(method)  # refuse a bad method before opening anything
    crs, resolution = grid if grid else (None, None)
    request = GridRequest(
        crs=crs,
        resolution=resolution,
        like=str(like) if like else None,
        bounds=bounds,
        max_pixels=max_pixels,
    )
    options = CompositeOptions(
        method=method,
        scorer=scorer,
        model=model,
        min_quality=min_quality,
        distance_cap=distance_cap,
        block=block,
        bands=bands,
        scale=scale,
        level=level.upper() if level else None,
        drop_incomplete=drop_incomplete,
        grid=request,
        resume=not no_resume,
        quicklook=not no_quicklook,
        progress=not quiet,
    )
    cluster = ClusterOptions(scheduler=scheduler, workers=workers, processes=not threads)
    say = (lambda _: None) if quiet else click.echo
    with library_reports(quiet):
        result = run_composite(inputs, output, options, cluster=cluster)
    summary = result.summary_data
    used = summary["inputs"]
    say(
        f"{result.output}: {summary['grid']['width']} x {summary['grid']['height']} px, "
        f"{len(used)} inputs, method {summary['method']}, {result.seconds:.1f} s on {result.engine}"
    )
    say(
        f"  pixels without a clear observation: {summary['pixels_without_clear_observation']} "
        f"({100 * summary['share_without_clear_observation']:.2f}%)"
    )
    for entry in used:
        if entry["failed_windows"]:
            click.secho(
                f"warning: {entry['path']} could not be read in {entry['failed_windows']} of "
                f"{summary['windows']} windows (left out there): {with_flags(entry['error'])}",
                fg="yellow",
                err=True,
            )
    for extra in (result.info, result.quicklook, result.summary):
        if extra is not None:
            say(f"  wrote {extra}")
