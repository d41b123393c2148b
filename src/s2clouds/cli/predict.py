"""``s2clouds predict``: cloud and shadow masks for one scene or a whole archive."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from s2clouds.cli.options import (
    bands_option,
    cluster_options,
    level_option,
    quiet_option,
    resolution_option,
    scale_option,
)
from s2clouds.cli.params import library_reports, with_flags

if TYPE_CHECKING:
    from collections.abc import Callable

    from s2clouds.inference.batch import BatchResult
    from s2clouds.inference.distributed import ClusterOptions
    from s2clouds.inference.options import (
        PredictOptions,
    )
    from s2clouds.inference.records import PredictionResult

    Say = Callable[[str], None]


@click.command("predict")
@click.argument("sources", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output mask (COG .tif) for one input; an output folder for several "
    "(masks named <product_id>_cloudmask.tif, run log s2clouds_run.json).",
)
@click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Text file of inputs, one per line (same as @FILE).",
)
@resolution_option
@click.option(
    "--model",
    default=None,
    help="Model name (see 's2clouds models'); default: auto (the shipped model for the "
    "input's bands and level).",
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
    help="Write an RGB PNG with the mask overlaid (one input only).",
)
@click.option(
    "--block",
    type=click.IntRange(min=64),
    default=1024,
    show_default=True,
    help="Window edge (px) processed at once; bounds memory (--series: fixed 256 px windows).",
)
@click.option(
    "--exact-reads",
    is_flag=True,
    help="Models that work at 20 m read exact block means of every decoded 10 m pixel, "
    "not the files' JPEG 2000 resolution levels (about 2x slower on a SAFE product).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Several inputs: redo scenes whose masks exist (default: skip them).",
)
@cluster_options
@click.option(
    "--no-dashboard", is_flag=True, help="Do not serve the local cluster's Dask dashboard."
)
@click.option(
    "--sign",
    default=None,
    metavar="NAME",
    help="Signing hook for remote STAC assets, run each time a file is opened: "
    "'planetary-computer', module:function, or an s2clouds.signers entry point "
    "(default: $S2CLOUDS_SIGN).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Re-runs of a window that raised (lost workers are always retried).",
)
@click.option(
    "--series",
    is_flag=True,
    help="The inputs are dates of one place: mask every date with the evidence of the others "
    "(one mask per date in the -o folder, plus series_summary.json).",
)
@click.option(
    "--no-resume",
    is_flag=True,
    help="With --series: compute every window again instead of resuming an interrupted run "
    "from the windows it saved.",
)
@quiet_option
def predict(
    sources: tuple[str, ...],
    output: Path,
    from_file: Path | None,
    resolution: str | None,
    model: str | None,
    probabilities: bool,
    bands: tuple[str, ...] | None,
    level: str | None,
    scale: str | None,
    quicklook: Path | None,
    block: int,
    exact_reads: bool,
    overwrite: bool,
    workers: int | None,
    threads: bool,
    no_dashboard: bool,
    scheduler: str | None,
    sign: str | None,
    retries: int,
    series: bool,
    no_resume: bool,
    quiet: bool,
) -> None:
    """Predict canonical masks (0 clear, 1 thick cloud, 2 thin cloud, 3 shadow, 255 no data).

    SOURCES are Sentinel-2 .SAFE folders or .zip files, multi-band GeoTIFF/COGs, folders of
    single-band files named by band (B02.tif, B03.tif, ...), or STAC item JSON files whose
    assets are local band files or URLs (read by HTTP range requests; see --sign and
    's2clouds search'); globs ('tiles/*.SAFE') and @LIST files are expanded.

    One input is written to -o OUT.tif. Several inputs go to the folder -o DIR: each scene is
    an independent task, finished scenes are skipped on re-run, a scene that fails is reported
    and the others go on; the exit code is 1 when any scene failed.
    """
    from s2clouds.inference.distributed import ClusterOptions
    from s2clouds.inference.inputs import expand_inputs
    from s2clouds.inference.options import (
        OutputOptions,
        PredictOptions,
        ReadOptions,
        RunOptions,
    )
    from s2clouds.models.registry import DEFAULT_MODEL

    inputs = expand_inputs(sources, from_file)
    if not inputs:
        raise click.UsageError("give at least one input (a path, a glob, @LIST or --from-file)")
    batch = _is_batch(sources, from_file, inputs, output)
    options = PredictOptions(
        read=ReadOptions(
            bands=bands,
            level=level.upper() if level else None,
            scale=scale,
            resolution=float(resolution) if resolution else None,
            sign=sign,
        ),
        run=RunOptions(model=model or DEFAULT_MODEL, block=block, exact_reads=exact_reads),
        # one scene replaces its mask; a batch skips finished scenes unless --overwrite
        output=OutputOptions(
            probabilities=probabilities, quicklook=quicklook, overwrite=overwrite or not batch
        ),
        progress=not quiet,
    )
    cluster = ClusterOptions(
        scheduler=scheduler,
        workers=workers,
        processes=not threads,
        dashboard=not no_dashboard,
        retries=retries,
    )
    say: Say = _silent if quiet else click.echo
    with library_reports(quiet):
        if series:
            from s2clouds.cli.series import run_series

            run_series(
                inputs,
                output,
                options,
                quicklook=quicklook,
                say=say,
                cluster=cluster,
                resume=not no_resume,
            )
        elif batch:
            if quicklook is not None:
                raise click.UsageError("--quicklook writes one PNG; give it with a single input")
            if output.suffix.lower() in (".tif", ".tiff"):
                raise click.UsageError(f"several inputs need an output folder for -o, not {output}")
            _run_batch(inputs, output, options, cluster, say=say)
        else:
            _run_single(inputs[0], output, options, cluster, say=say)


def _silent(_: str) -> None:
    """``--quiet``: progress lines go nowhere."""


def _is_batch(
    sources: tuple[str, ...], from_file: Path | None, inputs: list[str], output: Path
) -> bool:
    """Batch mode: several inputs, a list or glob, or an existing output folder."""
    expanded = from_file is not None or any(s.startswith("@") for s in sources)
    return expanded or len(inputs) != 1 or inputs[0] != sources[0] or output.is_dir()


def _run_single(
    source: str, output: Path, options: PredictOptions, cluster: ClusterOptions, *, say: Say
) -> None:
    from s2clouds.inference.predict import predict

    result = predict(source, output, options, cluster=cluster)
    _print_result(result, say)


def _print_result(result: PredictionResult, say: Say) -> None:
    shares = ", ".join(
        f"{name} {100 * share:.1f}%" for name, share in result.class_fractions.items()
    )
    pixel_size = result.pixel_size or f"{result.resolution:g} m"
    say(
        f"{result.output}: {result.shape[1]} x {result.shape[0]} px at {pixel_size}, "
        f"model {result.model}, {result.seconds:.1f} s"
    )
    say(f"  {shares} (of valid pixels; valid {100 * result.valid_fraction:.1f}%)")
    for extra in (result.probabilities, result.quicklook):
        if extra is not None:
            say(f"  wrote {extra}")


def _run_batch(
    inputs: list[str],
    outdir: Path,
    options: PredictOptions,
    cluster: ClusterOptions,
    *,
    say: Say,
) -> None:
    from s2clouds.inference.batch import run_batch

    result = run_batch(inputs, outdir, options, cluster=cluster)
    _print_summary(result, say)
    if not result.ok:
        raise SystemExit(result.exit_code)


def _print_summary(result: BatchResult, say: Say) -> None:
    for record in result.records:
        if record.status == "failed":
            error = with_flags(record.error or "")
            click.secho(f"failed: {record.input}: {error}", fg="red", err=True)
        elif record.status == "done":
            say(
                f"done: {record.output} ({record.seconds:.1f} s, cloud {record.cloud_percent:.1f}%, "
                f"shadow {record.shadow_percent:.1f}%)"
            )
    say(
        f"{result.count('done')} done, {result.count('skipped')} skipped (already there), "
        f"{result.count('failed')} failed in {result.seconds:.1f} s; run log {result.log}"
    )
