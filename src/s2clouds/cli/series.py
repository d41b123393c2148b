"""``s2clouds predict --series``: the output side of time-series masks (see
:mod:`s2clouds.inference.series`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from s2clouds.inference.distributed import ClusterOptions
    from s2clouds.inference.options import PredictOptions


def run_series(
    inputs: list[str],
    outdir: Path,
    options: PredictOptions,
    *,
    quicklook: Path | None,
    say: Callable[[str], None],
    cluster: ClusterOptions | None = None,
    resume: bool = True,
) -> None:
    """Predict ``inputs`` as one series into the folder ``outdir`` and print per date the
    cloud and shadow shares, single-date and series."""
    from s2clouds.inference.series import predict_series

    if quicklook is not None:
        raise click.UsageError("--quicklook is for one scene; leave it out with --series")
    if outdir.suffix.lower() in (".tif", ".tiff"):
        raise click.UsageError(f"--series writes one mask per date into a folder, not {outdir}")
    # a series is one job: its masks are replaced on a re-run
    options = replace(options, output=replace(options.output, overwrite=True))
    result = predict_series(inputs, outdir, options, cluster=cluster, resume=resume)
    for record in result.dates:
        single, series = record.single, record.series
        say(
            f"{Path(record.output).name}: cloud {single['cloud_percent']:.1f}% -> "
            f"{series['cloud_percent']:.1f}%, shadow {single['shadow_percent']:.1f}% -> "
            f"{series['shadow_percent']:.1f}% (single date -> series)"
        )
    say(
        f"{len(result.dates)} dates in {result.seconds:.1f} s, model {result.model}; "
        f"summary {result.summary}"
    )
