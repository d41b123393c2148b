"""``s2clouds benchmark``: score maskers on a dataset with the protocol of the literature."""

from __future__ import annotations

from pathlib import Path

import click

from s2clouds.cli.options import kind_option, parse_options, quiet_option, reader_options


@click.command("benchmark")
@click.argument("dataset_path", type=click.Path(exists=True, path_type=Path), required=False)
@kind_option
@click.option(
    "--split", default="test", show_default=True, help="Split(s) to score, comma separated."
)
@click.option(
    "--models",
    "models",
    default="physical",
    show_default=True,
    help="Maskers, comma separated: registered models (physical, s2cloudless, ukis-csmask) "
    "and stored layers as layer:NAME (e.g. layer:fmask, layer:QA60, layer:sen2cor).",
)
@click.option(
    "--protocol",
    default=None,
    help="Protocol (default: the dataset's): cloudsen12, cmc, spatiotemporal, false_cloud "
    "(SEN12MS's clear scenes). SEN12MS land cover: 's2clouds landcover benchmark'.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Score only the first N samples."
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write CSV, Markdown and HTML report with plots into this folder.",
)
@click.option(
    "--predictions",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of predicted rasters to score against --references (matched by file name).",
)
@click.option(
    "--references", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None
)
@click.option(
    "--pred-scheme", default="canonical", show_default=True, help="Scheme of --predictions."
)
@click.option(
    "--ref-scheme", default="canonical", show_default=True, help="Scheme of --references."
)
@reader_options()
@quiet_option
def benchmark(
    dataset_path: Path | None,
    kind: str | None,
    split: str,
    models: str,
    protocol: str | None,
    limit: int | None,
    report_dir: Path | None,
    predictions: Path | None,
    references: Path | None,
    pred_scheme: str,
    ref_scheme: str,
    options: tuple[str, ...],
    quiet: bool,
) -> None:
    """Score maskers on DATASET_PATH (or a folder of predictions against references).

    Reader options (-O) go to the dataset reader as in 's2clouds datasets info', e.g.
    -O level=L2A (CloudSEN12), -O tags=forest,!thin (Cloud Mask Catalogue).
    """
    from s2clouds.benchmark.report import print_summary, write_report
    from s2clouds.benchmark.runner import (
        LAYER_PREFIX,
        benchmark_folders,
        run_benchmark,
        worst_quicklooks,
    )
    from s2clouds.datasets.base import CloudDataset

    dataset: CloudDataset | None = None
    if predictions is not None or references is not None:
        if predictions is None or references is None:
            raise click.UsageError("--predictions and --references go together")
        if dataset_path is not None:
            raise click.UsageError("give DATASET_PATH or --predictions/--references, not both")
        scorer = benchmark_folders(
            predictions,
            references,
            pred_scheme=pred_scheme,
            ref_scheme=ref_scheme,
            protocol=protocol or "cloudsen12",
        )
    else:
        if dataset_path is None:
            raise click.UsageError("give DATASET_PATH, or --predictions and --references")
        from s2clouds.datasets.registry import dataset_class, detect_dataset, open_dataset

        kind = kind or detect_dataset(dataset_path)
        maskers = [m.strip() for m in models.split(",") if m.strip()]
        layers = [m[len(LAYER_PREFIX) :] for m in maskers if m.startswith(LAYER_PREFIX)]
        splits = [s.strip() for s in split.split(",")]
        reader_class = dataset_class(kind)
        reader = reader_class.benchmark_options(splits, layers) | parse_options(options)
        dataset = open_dataset(dataset_path, kind, **reader)
        scorer = run_benchmark(dataset, maskers, protocol=protocol, limit=limit, progress=not quiet)
    print_summary(scorer)
    if report_dir is not None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            looks = worst_quicklooks(scorer, dataset, Path(tmp)) if dataset is not None else []
            files = write_report(
                scorer,
                report_dir,
                failures={look.caption: look.path for look in looks},
                thumbnails={(look.masker, look.image_id): look.caption for look in looks},
            )
        written = [files.per_image_csv, files.summary_csv, files.markdown, files.html]
        click.echo(
            f"report written to {report_dir}: {', '.join(p.name for p in written)} "
            f"and {len(files.figures)} figures"
        )
