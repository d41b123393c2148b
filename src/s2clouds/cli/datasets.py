"""``s2clouds datasets``: inspect benchmark datasets on disk (``info``, ``show``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from s2clouds.cli.options import kind_option, parse_options, reader_options

__all__ = ["datasets", "parse_options"]

DEFAULT_MAX_SAMPLES = 50
DEFAULT_STRETCH = "percentile"


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


@click.group("datasets")
def datasets() -> None:
    """Inspect benchmark datasets on disk."""


@datasets.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@kind_option
@reader_options()
@click.option(
    "--max-samples",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_SAMPLES,
    show_default=True,
    help="Read at most this many evenly spaced samples for the class histogram.",
)
def info(path: Path, kind: str | None, options: tuple[str, ...], max_samples: int) -> None:
    """Print counts, bands, splits and a class histogram of the dataset at PATH."""
    from rich.console import Console
    from rich.table import Table

    from s2clouds.datasets.registry import class_histogram, open_dataset, sample_positions

    dataset = open_dataset(path, kind, **parse_options(options))
    summary = Table(title=f"{dataset.name}: {path}", show_header=False)
    summary.add_column("field", style="bold")
    summary.add_column("value")
    for key, value in dataset.summary().items():
        summary.add_row(key, _format_value(value))

    counts, used = class_histogram(dataset, max_samples=max_samples)
    total = sum(counts.values())
    read = len(sample_positions(len(dataset), max_samples))
    if used == 0:
        caption = f"no canonical masks in the {read} samples read"
    elif read < len(dataset):
        caption = f"sampled {used} of {len(dataset)} samples"
    else:
        caption = f"all {used} samples"
    histogram = Table(title="canonical classes")
    histogram.add_column("class")
    histogram.add_column("pixels", justify="right")
    histogram.add_column("share", justify="right")
    for name, count in counts.items():
        histogram.add_row(name, f"{count:,}", f"{100 * count / total:.2f} %" if total else "-")

    console = Console()
    console.print(summary)
    console.print(histogram)
    console.print(f"class histogram: {caption}")


#: panels every sample has; never reader layers
SAMPLE_PANELS = ("valid", "mask", "mask_canonical", "image", "s1")


def _with_layers(
    path: Path, kind: str | None, reader: dict[str, Any], names: list[str]
) -> dict[str, Any]:
    """Reader options that also read the ``--layers`` panels the reader stores as layers
    (CloudSEN12's ``layers=``), so one of ``--layers`` and ``-O layers=`` is enough."""
    import inspect

    from s2clouds.datasets.registry import dataset_class, detect_dataset

    stored = [n for n in names if n not in SAMPLE_PANELS]
    if not stored or "layers" in reader:
        return reader
    cls = dataset_class(kind or detect_dataset(path))
    if "layers" not in inspect.signature(cls).parameters:
        return reader
    return reader | {"layers": stored}


@datasets.command("show")
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("index", type=int)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Image to write (.png, .pdf, .svg).",
)
@kind_option
@reader_options()
@click.option(
    "--layers", default="", help="Extra panels by name, comma separated (e.g. valid,S1_VV)."
)
@click.option(
    "--stretch",
    type=click.Choice(["percentile", "fixed"]),
    default=DEFAULT_STRETCH,
    show_default=True,
    help="True-colour stretch: 2-98 percentile, or reflectance 0-0.3.",
)
def show(
    path: Path,
    index: int,
    output: Path,
    kind: str | None,
    options: tuple[str, ...],
    layers: str,
    stretch: str,
) -> None:
    """Save a quicklook of sample INDEX of the dataset at PATH (written atomically)."""
    from s2clouds.datasets.registry import open_dataset
    from s2clouds.viz import save_figure

    names = [n.strip() for n in layers.split(",") if n.strip()]
    dataset = open_dataset(path, kind, **_with_layers(path, kind, parse_options(options), names))
    if not -len(dataset) <= index < len(dataset):
        raise click.BadParameter(
            f"{index} is out of range; the dataset has {len(dataset)} samples", param_hint="INDEX"
        )
    if not names:
        names = list(dataset.layer_keys) if hasattr(dataset, "layer_keys") else []
    figure = dataset.plot(index, layers=names or None, stretch=stretch)
    save_figure(figure, output)
    click.echo(f"wrote {output}")
