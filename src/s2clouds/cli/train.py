"""``s2clouds train``: train a learned model on any dataset reader (needs the train extra)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from s2clouds.cli.options import parse_bands, parse_options, quiet_option, reader_options
from s2clouds.datasets.registry import DATASETS

PIXEL_MODEL = "lightgbm-pixel"
ARCHITECTURE_NAMES = ("tiny-unet", "unet-mobilenetv2", PIXEL_MODEL)
DEFAULT_LR = {PIXEL_MODEL: 0.1}  # networks: 1e-3
F = TypeVar("F", bound=Callable[..., Any])
_KIND = click.Choice(list(DATASETS), case_sensitive=False)


def _dataset_option(flag: str, required: bool, help_text: str) -> Callable[[F], F]:
    return click.option(
        flag,
        type=(_KIND, click.Path(exists=True, path_type=Path)),
        required=required,
        default=None,
        metavar="KIND PATH",
        help=help_text,
    )


@click.command("train")
@_dataset_option(
    "--dataset", True, f"Training data: reader kind ({', '.join(DATASETS)}) and folder."
)
@click.option(
    "--model",
    "architecture",
    type=click.Choice(ARCHITECTURE_NAMES),
    default="tiny-unet",
    show_default=True,
    help=f"Architecture to train ({PIXEL_MODEL}: LightGBM on pixels, no torch needed).",
)
@click.option(
    "--bands",
    callback=parse_bands,
    default="B02,B03,B04,B08",
    show_default=True,
    help="Input bands, in order.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Learning rate [default: 1e-3; 0.1 for the pixel model].",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Pixel model: boosting rounds (early stopping on validation).",
)
@click.option(
    "--pixels-per-sample",
    type=click.IntRange(min=1),
    default=4000,
    show_default=True,
    help="Pixel model: labelled pixels drawn per sample.",
)
@click.option(
    "--stride",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Pixel model: classify every N-th pixel, interpolate between (N^2 times faster).",
)
@click.option(
    "--crop", type=click.IntRange(min=16), default=256, show_default=True, help="Patch edge (px)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Run folder (best.pt, last.pt, metrics.csv, curve.png; pixel model: pixel.lgbm).",
)
@_dataset_option("--val-dataset", False, "Validation data (default: a 10% hold-out).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--resume/--no-resume", default=True, show_default=True, help="Continue from OUT/last.pt."
)
@reader_options("Reader option for both datasets, repeatable: e.g. -O split=train -O level=L2A.")
@click.option(
    "-V",
    "--val-option",
    "val_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Reader option for the validation dataset only, overriding -O: e.g. -V split=val.",
)
@click.option("--name", default=None, help="Model name recorded in the weight spec.")
@click.option("--licence", default="", help="Licence of the weights (follows the training data).")
@quiet_option
def train(
    dataset: tuple[str, Path],
    architecture: str,
    bands: tuple[str, ...],
    out_dir: Path,
    val_dataset: tuple[str, Path] | None,
    options: tuple[str, ...],
    val_options: tuple[str, ...],
    quiet: bool,
    **settings: Any,
) -> None:
    """Train a cloud/shadow model on a dataset; prints where the model went.

    Export a network for torch-free inference with: s2clouds export OUT/best.pt -o model.onnx.
    A pixel model is ready as it is: s2clouds predict SCENE --model OUT/pixel.lgbm
    """
    train_data, val_data = _open_datasets(dataset, val_dataset, options, val_options)
    kind, path = dataset
    provenance = {
        "name": settings["name"],
        "licence": settings["licence"],
        "training_data": f"{kind} {path} ({len(train_data)} samples)",
    }
    job = TrainJob(
        train_data,
        val_data,
        architecture,
        bands,
        settings["lr"] or DEFAULT_LR.get(architecture, 1e-3),
        out_dir,
        quiet,
        settings,
        provenance,
    )
    if architecture == PIXEL_MODEL:
        _train_pixel(job)
    else:
        _train_network(job)


@dataclass(frozen=True)
class TrainJob:
    """What both trainers get: the readers, the model, where it goes and the CLI settings."""

    train_data: Any
    val_data: Any
    architecture: str
    bands: tuple[str, ...]
    learning_rate: float
    out_dir: Path
    quiet: bool
    settings: dict[str, Any]
    provenance: dict[str, Any]


def _open_datasets(
    dataset: tuple[str, Path],
    val_dataset: tuple[str, Path] | None,
    options: tuple[str, ...],
    val_options: tuple[str, ...],
) -> tuple[Any, Any]:
    """The training reader (``-O`` options) and the validation reader (``-O`` then ``-V``)."""
    from s2clouds.datasets.registry import open_dataset

    reader = parse_options(options)
    kind, path = dataset
    train_data = open_dataset(path, kind.lower(), **reader)
    if val_dataset is None:
        return train_data, None
    val_reader = reader | parse_options(val_options)
    return train_data, open_dataset(val_dataset[1], val_dataset[0].lower(), **val_reader)


def _train_pixel(job: TrainJob) -> None:
    """Fit the LightGBM pixel model (``--rounds``, ``--pixels-per-sample``, ``--stride``)."""
    from s2clouds.train.pixel import PixelTrainConfig, train_pixel_model

    config = PixelTrainConfig(
        bands=job.bands,
        rounds=job.settings["rounds"],
        learning_rate=job.learning_rate,
        pixels_per_sample=job.settings["pixels_per_sample"],
        seed=job.settings["seed"],
    )
    result = train_pixel_model(
        job.train_data,
        out_dir=job.out_dir,
        config=config,
        val_dataset=job.val_data,
        name=job.provenance["name"] or "s2clouds-pixel",
        stride=job.settings["stride"],
        progress=not job.quiet,
        training_data=job.provenance["training_data"],
        licence=job.provenance["licence"],
    )
    click.echo(f"pixel model: {result.path} ({result.rounds} rounds, {result.seconds:.1f} s)")
    click.echo(
        f"validation cloud BOA {result.scores['boa_cloud']:.3f}, "
        f"shadow BOA {result.scores['boa_shadow']:.3f}; metrics: "
        f"{job.out_dir / 'metrics.json'}"
    )


def _train_network(job: TrainJob) -> None:
    """Train a network (``--epochs``, ``--batch-size``, ``--crop``, ``--resume``)."""
    from s2clouds.train import require_torch

    require_torch()
    from s2clouds.train.augment import Augmentation
    from s2clouds.train.loop import TrainConfig
    from s2clouds.train.loop import train as run_training

    config = TrainConfig(
        architecture=job.architecture,
        bands=job.bands,
        epochs=job.settings["epochs"],
        batch_size=job.settings["batch_size"],
        lr=job.learning_rate,
        seed=job.settings["seed"],
        augmentation=Augmentation(crop=job.settings["crop"]),
    )
    best = run_training(
        job.train_data,
        config,
        out_dir=job.out_dir,
        val_dataset=job.val_data,
        resume=job.settings["resume"],
        progress=not job.quiet,
        **job.provenance,
    )
    click.echo(f"best checkpoint: {best}")
    click.echo(f"metrics: {job.out_dir / 'metrics.csv'}, curve: {job.out_dir / 'curve.png'}")
